"""Multiplication: exact product, strict integer format, the question restated only as itself."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.records import Question
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


# ---- answers as instruct models write them (issue 15 item 13) ------------------------------------------------
def _mq(a: int, b: int):
    task = get_task("multiplication", digits=len(str(a)), digits_b=len(str(b)))
    return task, Question(id="x", task="multiplication", params=task.params.model_dump(), fields={"a": a, "b": b},
                          gold=str(a * b))


@pytest.mark.parametrize("text", [
    "466 x 381 = 177546", "\\boxed{177546}", "**177546**", "$177546$", "177546.", "$\\boxed{177546}$",
    "**\\boxed{177,546}**", "466 \\times 381 = 177546", "381 \\cdot 466 = 177546", "466 × 381 = 177 546",
    "466*381=177546", "466 X 381 = \\boxed{177546}", "$466 \\times 381 = 177546$.", "\\(466 \\times 381 = 177546\\)",
])
def test_accepts_dressed_answers(text):
    task, q = _mq(466, 381)
    assert task.check(q, f"<answer>{text}</answer>").correct, task.check(q, f"<answer>{text}</answer>")


@pytest.mark.parametrize("text,reason", [
    ("177546 or 177547", "unparseable"), ("\\boxed{177547}", "wrong_value"), ("466 x 380 = 177546", "wrong_factors"),
    ("466 x 381 = 177547", "wrong_value"), ("$177546", "unparseable"), ("177546$", "unparseable"),
    ("9" * 60, "too_long"), ("466 ** 381 = 177546", "unparseable"), ("__import__('os')", "unparseable"),
    ("466 x 381 x 1 = 177546", "unparseable"), ("177546 = 466 x 381", "unparseable"), ("= 177546", "unparseable"),
    ("466 x 381 = 177546 = 177546", "unparseable"), ("233 x 762 = 177546", "wrong_factors"),
    ("466 + 381 = 177546", "unparseable"), ("466 x 381 = 177546 apples", "unparseable"),
    ("**177546** or **1**", "unparseable"),
    ("-466 x -381 = 177546", "wrong_factors"), ("466 x 381 =", "unparseable"), ("177546..", "unparseable"),
])
def test_rejects_dressed_wrong_answers(text, reason):
    task, q = _mq(466, 381)
    res = task.check(q, f"<answer>{text}</answer>")
    assert not res.correct and res.reason == reason, res


_TIMES = ["x", "X", "*", "×", "\\times", "\\cdot", "·"]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**9 - 1), st.integers(1, 10**9 - 1), st.sampled_from(_TIMES), st.booleans(), st.booleans())
def test_restated_question_is_accepted_only_with_its_own_factors(a, b, op, swap, grouped):
    task, q = _mq(a, b)
    x, y = (b, a) if swap else (a, b)
    product = f"{a * b:,}" if grouped else str(a * b)
    assert task.check(q, f"<answer>{x} {op} {y} = {product}</answer>").correct
    assert task.check(q, f"<answer>{x}{op}{y}={product}</answer>").correct
    assert task.check(q, f"<answer>{x} {op} {y} = {a * b + 1}</answer>").reason == "wrong_value"
    # another pair of factors, even one with the same product, is not this question restated
    for c, d in [(a + 1, b), (a, b - 1), (a * b, 1), (1, a * b)]:
        if sorted((c, d)) != sorted((a, b)):
            assert task.check(q, f"<answer>{c} {op} {d} = {c * d}</answer>").reason == "wrong_factors"
