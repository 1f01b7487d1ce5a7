"""Countdown: generation is solvable and fast, the verifier is exact, and mutated answers fail."""

from __future__ import annotations

import random
import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.tasks import TaskParamError, get_task
from skillfactory.tasks.arith import BinOp, parse_expression, format_expr, evaluate
from skillfactory.tasks.countdown import check_countdown, random_solution, solve

NUMS, TARGET = [3, 5, 7], 22


@pytest.mark.parametrize("answer", [
    "3 * 5 + 7", "7 + 5 * 3", "(3 * 5) + 7", "3*5+7 = 22", "3 x 5 + 7", "3 X 5 + 7", "3 × 5 + 7", "3 \\times 5 + 7",
    "Step 1: 3 * 5 = 15\nStep 2: 15 + 7 = 22", "3 * 5 = 15; 15 + 7 = 22", "Step 1: 3*5=15. Step 2: 15+7=22.",
    "3*5+7.", "((3 * 5) + 7)", "7 - -3 * 5", "7 / 7 * 0 + 22 - 0" * 0 + "21 + 7 / 7" * 0 + "3 * 5 + 7",
])
def test_accepts_correct_forms(answer):
    assert check_countdown(NUMS, TARGET, answer).correct, check_countdown(NUMS, TARGET, answer)


@pytest.mark.parametrize("answer,reason", [
    ("", "unparseable"), ("22", "wrong_numbers"), ("3 * 5", "wrong_value"), ("3 * 5 + 7 + 7", "reused_number"),
    ("3 * 5 + 8 - 1", "wrong_numbers"), ("3 ** 5", "bad_operator"), ("3 ^ 5", "bad_operator"),
    ("3 * 5 + 7 = 23", "bad_step"), ("3 * 5 + 7 = 22 = 22", "unparseable"), ("(3 * 5 + 7", "unparseable"),
    ("3 * 5 + 7)", "unparseable"), ("3(5) + 7", "unparseable"), ("abs(3) * 5 + 7", "unparseable"),
    ("__import__('os').getpid()", "unparseable"), ("7 / (5 - 5) + 3", "reused_number"),
    ("Step 1: 3 * 5 = 16\nStep 2: 16 + 7 = 23", "bad_step"), ("Step 1: 3 * 5 = 15\nStep 2: 15 + 7 = 22\nStep 3: 3 + 5 = 8", "reused_number"),
    ("Step 1: 3 * 5 = 15\nStep 2: 22 + 0 = 22", "wrong_numbers"), ("Step 1: 3 + 5\nStep 2: 8 * 7 = 56", "bad_step"),
    ("3" + "0" * 40, "too_large"), ("(" * 60 + "3" + ")" * 60, "too_deep"), ("3 + " * 400 + "3", "too_long"),
    ("3 * 5 + 7 = 22 because", "unparseable"), ("3.0 * 5 + 7.5", "wrong_numbers"),
])
def test_rejects_with_reason(answer, reason):
    res = check_countdown(NUMS, TARGET, answer)
    assert not res.correct
    assert res.reason == reason, res


def test_division_by_zero_and_exact_fractions():
    assert check_countdown([5, 5, 3], 3, "3 / (5 - 5)").reason == "division_by_zero"
    assert check_countdown([7, 2, 2], 7, "7 / 2 * 2").correct  # exact, no float rounding
    assert check_countdown([1, 3, 3], 1, "1 / 3 * 3").correct
    assert check_countdown([3, 3, 8, 8], 24, "8 / (3 - 8 / 3)").correct  # a fractional intermediate


def test_use_all_and_at_most_once():
    assert check_countdown([3, 5, 7, 100], 22, "3 * 5 + 7").reason == "unused_number"
    assert check_countdown([3, 5, 7, 100], 22, "3 * 5 + 7", use_all=False).correct
    assert check_countdown([3, 5, 7, 100], 22, "3 * 5 + 7 + 3", use_all=False).reason == "reused_number"


def test_operator_subset_and_negation():
    assert check_countdown(NUMS, TARGET, "3 * 5 + 7", operators="+-").reason == "bad_operator"
    assert check_countdown([3, 5, 7], 9, "-3 + 5 + 7", operators="+*").reason == "bad_operator"
    assert check_countdown([3, 5, 7], 9, "-3 + 5 + 7").correct


def test_steps_must_chain():
    # 15 is read as the step's result (a given 15 may stay unused when use_all is False)
    assert check_countdown([3, 5, 7, 15], 22, "Step 1: 3 * 5 = 15\nStep 2: 15 + 7 = 22", use_all=False).correct
    assert check_countdown([3, 5, 7], 12, "Step 1: 3 * 5 = 15\nStep 2: 5 + 7 = 12").reason == "reused_number"
    res = check_countdown([2, 3, 4, 6], 10, "Step 1: 2 * 3 = 6\nStep 2: 4 + 6 = 10")
    assert res.reason == "unused_number"  # 6 is read as the step result; the given 6 stays unused
    res = check_countdown([2, 3, 4, 5], 9, "Step 1: 2 * 3 = 6\nStep 2: 4 + 5 = 9", use_all=False)
    assert res.reason == "unused_result"  # a step result that no later step uses is not a derivation
    assert check_countdown([2, 3, 4, 6], 60, "Step 1: 2 * 3 = 6\nStep 2: 6 + 4 = 10\nStep 3: 10 * 6 = 60").correct


def test_solver_agrees_with_verifier_and_brute_force():
    rng = random.Random(0)
    for _ in range(60):
        nums = [rng.randint(1, 12) for _ in range(rng.randint(2, 4))]
        target = rng.randint(1, 80)
        found = solve(nums, target)
        if found is not None:
            assert check_countdown(nums, target, found).correct
        else:  # nothing found: no random expression over these numbers hits the target either
            for _ in range(50):
                built = random_solution(nums, rng)
                assert built is None or built[1] != target
    assert solve([3, 5, 7], 1000) is None
    assert solve([3, 3, 8, 8], 24) is not None  # needs a fractional intermediate


def test_generation_solvable_deterministic_fast():
    task = get_task("countdown")
    t0 = time.perf_counter()
    qs = task.generate(500, seed=3)
    rate = 500 / (time.perf_counter() - t0)
    assert rate > 500, f"{rate:.0f} questions/s"  # > 2k/s on an idle core; loose bound for a shared CI box
    assert [q.model_dump() for q in qs[:50]] == [q.model_dump() for q in task.generate(50, seed=3)]
    for q in qs:
        assert task.verify(q, f"<answer>{q.gold}</answer>")
        steps = "\n".join(f"Step {i}: {s}" for i, s in enumerate(q.metadata["solution_steps"], 1))
        assert task.verify(q, f"<answer>{steps}</answer>")
        assert len(q.fields["numbers"]) == 3 and 10 <= q.fields["target"] <= 1000
        assert all(1 <= n <= 100 for n in q.fields["numbers"])


@pytest.mark.parametrize("num_args", [2, 4, 5, 6])
def test_harder_variants(num_args):
    task = get_task("countdown", num_args=num_args)
    for q in task.generate(30, seed=1, split="test"):
        assert len(q.fields["numbers"]) == num_args and q.split == "test"
        assert task.verify(q, f"<answer>{q.gold}</answer>")


def test_at_most_once_target_not_given():
    task = get_task("countdown", use_all=False, num_args=4, max_target=50)
    for q in task.generate(100, seed=0):
        assert q.fields["target"] not in q.fields["numbers"]
        assert task.verify(q, f"<answer>{q.gold}</answer>")


def test_statement_follows_params():
    q = get_task("countdown").generate(1, seed=0)[0]
    text = get_task("countdown").statement(q)
    assert str(q.fields["numbers"]) in text and str(q.fields["target"]) in text and "exactly once" in text
    t2 = get_task("countdown", operators="-+", use_all=False)
    q2 = t2.generate(1, seed=0)[0]
    assert "(+, -)" in t2.statement(q2) and "at most once" in t2.statement(q2)


@pytest.mark.parametrize("params", [
    {"num_args": 1}, {"num_args": 7}, {"operators": "+^"}, {"operators": ""}, {"min_number": 50, "max_number": 10},
    {"min_target": 0}, {"bogus": 1},
])
def test_bad_params_name_the_field(params):
    with pytest.raises(TaskParamError) as e:
        get_task("countdown", **params)
    assert next(iter(params)) in str(e.value) or "min_number" in str(e.value)


# ---- property tests: mutated correct answers must fail --------------------------------------------------------
_NUM = re.compile(r"\d+")


@st.composite
def solved(draw):
    nums = draw(st.lists(st.integers(1, 60), min_size=2, max_size=6))
    rng = random.Random(draw(st.integers(0, 2**32)))
    built = random_solution(nums, rng)
    assert built is not None
    return nums, built[1], built[0]


def _replace_literal(expr: str, k: int, new: str) -> str:
    spans = [m.span() for m in _NUM.finditer(expr)]
    a, b = spans[k]
    return expr[:a] + new + expr[b:]


@settings(max_examples=150, deadline=None)
@given(solved(), st.data())
def test_mutated_answers_fail(case, data):
    nums, target, expr = case
    assert check_countdown(nums, target, expr).correct
    lits = _NUM.findall(expr)
    k = data.draw(st.integers(0, len(lits) - 1))
    # a number swapped for one that is not given
    other = data.draw(st.integers(0, 200).filter(lambda v: v not in nums))
    assert not check_countdown(nums, target, _replace_literal(expr, k, str(other))).correct
    # a number reused in place of another one
    j = data.draw(st.integers(0, len(lits) - 1))
    if lits[j] != lits[k]:
        assert check_countdown(nums, target, _replace_literal(expr, k, lits[j])).reason == "reused_number"
    # a number added
    extra = data.draw(st.sampled_from(nums))
    op = data.draw(st.sampled_from("+-*/"))
    assert not check_countdown(nums, target, f"({expr}) {op} {extra}").correct
    # a number dropped: replace one operation by one of its operands
    node = parse_expression(expr)
    path = data.draw(st.lists(st.booleans(), max_size=5))
    dropped = _drop(node, path, data.draw(st.booleans()))
    assert not check_countdown(nums, target, format_expr(dropped)).correct


def _drop(node, path, keep_left):
    if not isinstance(node, BinOp):
        return node
    if not path or not isinstance(node.left if path[0] else node.right, BinOp):
        return node.left if keep_left else node.right
    if path[0]:
        return BinOp(node.op, _drop(node.left, path[1:], keep_left), node.right)
    return BinOp(node.op, node.left, _drop(node.right, path[1:], keep_left))


@settings(max_examples=100, deadline=None)
@given(solved())
def test_format_and_evaluate_round_trip(case):
    nums, target, expr = case
    node = parse_expression(expr)
    assert evaluate(node) == target
    assert format_expr(parse_expression(format_expr(node, spaced=False))) == expr
    assert sorted(int(n.text) for n in __import__("skillfactory.tasks.arith", fromlist=["literals"]).literals(node)) == sorted(nums)
