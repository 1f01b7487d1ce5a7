"""Reflection writers: each check ends in the verdict its own text reaches, and the honest ones agree with the
verifier; ``compare_last`` writes every comparison after both of its sides."""

from __future__ import annotations

import random
import re

import pytest

from skillfactory.prompting import parse_verdict
from skillfactory.tasks import get_task
from skillfactory.toy.attempts import countdown_attempt, mult_attempt
from skillfactory.toy.checks import countdown_check, mult_check
from skillfactory.toy.presets import TINY_COUNTDOWN

SAME = re.compile(r": (the same|not the same)\.$")


@pytest.mark.parametrize("size", [2, 3, 4])
def test_countdown_checks_compare_after_both_sides_and_reach_their_verdict(size):
    task = get_task("countdown", num_args=size, **TINY_COUNTDOWN)
    rng = random.Random(size)
    seen = {True: 0, False: 0}
    for q in task.generate(60, seed=2):
        numbers, target = [int(n) for n in q.fields["numbers"]], int(q.fields["target"])
        att = countdown_attempt(numbers, target, "original", rng, 0.5, "+-")
        truth = task.verify(q, att.text)
        for flip in (False, True):
            text, verdict = countdown_check(att, numbers, target, flip, rng, compare_last=True)
            assert parse_verdict(text) == verdict and verdict == (truth != flip)
            lines = text.split("\n")
            assert lines[1].startswith("It uses ") and "; the numbers are " in lines[1]
            last = lines[-2]
            if last.startswith("This gives"):  # value compared with the target, both written first
                value, said = re.match(r"This gives (\S+); the target is \d+: (the same|not the same)\.", last).groups()
                assert (said == "the same") == verdict
                if not flip:
                    assert (value == str(target)) == truth
            else:  # the numbers do not match the question's: said after both lists
                assert not verdict and re.search(r": (\d+ is not given|it leaves out \d+)\.$", last)
        seen[truth] += 1
    assert seen[True] and seen[False]


@pytest.mark.parametrize("steps", ["split", "digits"])
@pytest.mark.parametrize("digits", [2, 3])
def test_multiplication_checks_compare_after_both_sides(digits, steps):
    task = get_task("multiplication", digits=digits)
    rng = random.Random(digits)
    for q in task.generate(40, seed=2):
        x, y = int(q.fields["a"]), int(q.fields["b"])
        att = mult_attempt(x, y, "original", rng, 0.5, in_order=1.0, steps=steps)
        truth = task.verify(q, att.text)
        for flip in (False, True):
            text, verdict = mult_check(att, task.extract_answer(att.text), x, y, flip, rng, compare_last=True,
                                       steps=steps)
            other = y if att.b in (x, y) and att.a == x else x  # the factor the check multiplies
            if steps == "digits" and len(str(other).strip("0")) > 1:  # partials through single-digit facts
                assert re.search(r"\d+ x \d+ = \d+ x \d+ \+ \d+ x \d+", text)
            assert parse_verdict(text) == verdict
            said = SAME.search(text.split("\n")[-2]).group(1)
            assert (said == "the same") == verdict
            if not flip:
                assert verdict == truth


def test_the_older_form_is_kept_when_compare_last_is_off():
    rng = random.Random(0)
    att = countdown_attempt([6, 5, 3], 14, "original", rng, 1.0, "+-")
    text, verdict = countdown_check(att, [6, 5, 3], 14, False, rng)
    assert verdict and "as given" in text and "14 equals the target 14." in text
