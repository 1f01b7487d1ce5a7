"""Multiplication: exact product, strict integer format."""

from __future__ import annotations

import pytest

from skillfactory.tasks import TaskParamError, get_task
from skillfactory.tasks.multiplication import parse_integer


@pytest.fixture(scope="module")
def q():
    return get_task("multiplication", digits=4).generate(1, seed=0)[0]


def test_gold_is_product_and_digits():
    for digits, digits_b in [(2, None), (3, 3), (5, 2), (1, 9)]:
        task = get_task("multiplication", digits=digits, digits_b=digits_b)
        for q in task.generate(40, seed=2, split="test"):
            a, b = q.fields["a"], q.fields["b"]
            assert len(str(a)) == digits and len(str(b)) == (digits_b or digits)
            assert q.gold == str(a * b) and task.verify(q, f"<answer>{q.gold}</answer>")
            assert f"{a} x {b}" in task.statement(q)


def test_accepts_separators(q):
    task = get_task("multiplication", digits=4)
    p = int(q.gold)
    for text in [f"{p}", f"{p:,}", f"{p:,}".replace(",", " "), f"{p:_}", f"  {p}  ", f"{p:,}".replace(",", "\u202f")]:
        assert task.check(q, f"<answer>{text}</answer>").correct, text


@pytest.mark.parametrize("text,reason", [
    ("", "unparseable"), ("12,34", "bad_separators"), ("1,234 567", "bad_separators"), ("1,234,", "bad_separators"),
    ("1234.0", "unparseable"), ("1.234.567", "unparseable"), ("\\boxed{1234}", "unparseable"), ("1234 apples", "unparseable"),
    ("12*34", "unparseable"), ("1e6", "unparseable"), ("9" * 41, "too_long"), ("+1234", "unparseable"),
])
def test_rejects(text, reason):
    got = parse_integer(text)
    assert not isinstance(got, int) and got.reason == reason, got


def test_wrong_value(q):
    task = get_task("multiplication", digits=4)
    p = int(q.gold)
    for wrong in [p + 1, p - 1, -p, p * 10]:
        assert task.check(q, f"<answer>{wrong}</answer>").reason == "wrong_value"
    assert task.check(q, f"<answer>{p + 1}</answer> then <answer>{p}</answer>").correct  # the last answer counts
    assert task.check(q, f"<answer>{p}</answer> then <answer>{p + 1}</answer>").reason == "wrong_value"


def test_commuted_question_lands_in_one_split():
    task = get_task("multiplication", digits=3)
    for q in task.generate(100, seed=0):
        a, b = q.fields["a"], q.fields["b"]
        assert task.split_of({"a": b, "b": a}) == q.split == "train"


@pytest.mark.parametrize("params", [{"digits": 0}, {"digits": 10}, {"digits_b": 0}, {"digit": 3}])
def test_bad_params(params):
    with pytest.raises(TaskParamError, match=next(iter(params))):
        get_task("multiplication", **params)
