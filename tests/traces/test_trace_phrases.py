"""Glue phrase pools: enough distinct, short, plain phrases, none hiding inside another (no merged strings)."""

from __future__ import annotations

import random
import re

from skillfactory.traces import phrases
from skillfactory.traces.phrases import POOLS, all_phrases, classify_glue, glue_after


def test_every_pool_has_at_least_ten_distinct_phrases():
    assert set(POOLS) == {"generic", "after_correct", "after_incorrect", "ending", "backtrack", "confirm"}
    for name, pool in POOLS.items():
        assert len(pool) >= 10, name
        assert len(set(pool)) == len(pool), name
    assert len(set(all_phrases())) == len(all_phrases())


def test_no_phrase_contains_another():
    # A phrase inside another would make glue ambiguous; two phrases glued by a missing comma would show here too.
    ps = all_phrases()
    for a in ps:
        for b in ps:
            assert a == b or a not in b, (a, b)


def test_phrases_are_short_plain_single_strings():
    for p in all_phrases():
        assert p == p.strip() and 10 <= len(p) <= 90, p
        assert "\n" not in p and "<" not in p and ">" not in p, p
        assert not re.search(r"[.!?;:,][A-Za-z]", p), f"merged strings? {p!r}"
        assert p[-1] in ".:!", p
        assert len(re.findall(r"[.;:!?](?: |$)", p)) <= 3, f"too many sentences for one phrase: {p!r}"


def test_glue_is_classified_back_to_its_pool():
    rng = random.Random(0)
    for _ in range(500):
        correct = rng.random() < 0.5
        assert classify_glue(glue_after(rng, correct)) == ("after_correct" if correct else "after_incorrect")
    for name, pool in POOLS.items():
        for p in pool:
            assert classify_glue(p) == name
    assert classify_glue("Some words the model wrote.") is None


def test_glue_after_sometimes_adds_a_generic_lead_in():
    rng = random.Random(1)
    glues = [glue_after(rng, True) for _ in range(400)]
    with_lead = sum(g not in POOLS["after_correct"] for g in glues)
    assert abs(with_lead / len(glues) - phrases.GENERIC_FOLLOW_P) < 0.1
