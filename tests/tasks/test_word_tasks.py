"""letter_countdown and acronym: exact definitions, verified against the shipped word list."""

from __future__ import annotations

from collections import Counter

import pytest

from skillfactory.records import Question
from skillfactory.tasks import get_task
from skillfactory.tasks.acronym import is_subsequence
from skillfactory.tasks.words import common_words, normalize_word_answer, valid_words


def _q(task, **fields) -> Question:
    t = get_task(task)
    return Question(id="x", task=task, params=t.params.model_dump(), fields=fields, gold="-")


def test_word_lists_are_real_and_nested():
    valid, common = valid_words(), common_words()
    assert len(valid) > 150_000 and len(common) > 50_000
    assert list(common) == sorted(common) and set(common) <= valid
    for w in ("house", "garden", "letter", "quickly"):
        assert w in valid and w in common
    assert "Aaron" not in valid and "aaron" not in valid  # proper nouns are not words here
    assert all(w.isalpha() and w.islower() and w.isascii() for w in common[:2000])


@pytest.mark.parametrize("length", [3, 5, 8, 11])
def test_letter_countdown_gold(length):
    task = get_task("letter_countdown", length=length, extra=4)
    for q in task.generate(40, seed=0):
        letters = q.fields["letters"]
        assert len(letters) == length + 4 and q.fields["min_length"] == length and len(q.gold) == length
        assert not Counter(q.gold) - Counter(letters)
        assert task.verify(q, f"<answer>{q.gold}</answer>")
        assert task.verify(q, f"<answer>{q.gold.upper()}.</answer>")


def test_letter_countdown_rules():
    q = _q("letter_countdown", letters=list("gardenxq"), min_length=5)
    task = get_task("letter_countdown")
    assert task.check(q, "<answer>garden</answer>").correct
    assert task.check(q, "<answer>danger</answer>").correct  # any valid word counts, not just the gold
    assert task.check(q, "<answer>ranged</answer>").correct
    assert task.check(q, "<answer>grand</answer>").correct
    assert task.check(q, "<answer>dear</answer>").reason == "too_short"
    assert task.check(q, "<answer>gardens</answer>").reason == "wrong_letters"  # no 's'
    assert task.check(q, "<answer>greened</answer>").reason == "wrong_letters"  # one 'e' only
    assert task.check(q, "<answer>dragenx</answer>").reason == "not_a_word"
    assert task.check(q, "<answer>gar den</answer>").reason == "unparseable"
    assert task.check(q, "<answer>garden1</answer>").reason == "unparseable"


@pytest.mark.parametrize("length", [3, 4, 7, 10])
def test_acronym_gold(length):
    task = get_task("acronym", length=length, extra=3)
    for q in task.generate(40, seed=0):
        words = q.fields["words"]
        assert len(words) == length + 3 and len(set(words)) == len(words)
        assert is_subsequence(q.gold, "".join(w[0] for w in words))
        assert task.verify(q, f"<answer>{q.gold}</answer>")


def test_acronym_rules():
    task = get_task("acronym")
    q = _q("acronym", words=["cloud", "zebra", "apple", "table", "sun"], min_length=3)
    assert task.check(q, "<answer>cat</answer>").correct
    assert task.check(q, "<answer>cats</answer>").reason == "not_a_word"  # headwords only (see tasks/words.py)
    assert task.check(q, "<answer>'CAT'</answer>").correct
    assert task.check(q, "<answer>act</answer>").reason == "not_from_initials"  # order matters
    assert task.check(q, "<answer>tact</answer>").reason == "not_from_initials"  # each word gives one letter
    assert task.check(q, "<answer>at</answer>").reason == "too_short"
    assert task.check(q, "<answer>czats</answer>").reason == "not_a_word"
    assert task.check(q, "<answer>c a t</answer>").reason == "unparseable"


def test_normalize_word_answer():
    assert normalize_word_answer(' "Garden". ') == "garden"
    assert normalize_word_answer("x" * 41) is None
    assert normalize_word_answer("naïve") is None
    assert normalize_word_answer("") is None
