"""Step-form countdown answers verify exactly when their expression form does (issue 18), negative and
fractional intermediate results included; broken derivations are still rejected."""

from __future__ import annotations

import random
import time
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from skillfactory.records import Question
from skillfactory.tasks import get_task
from skillfactory.tasks.arith import ArithError, BinOp, Node, Num, apply_op, evaluate, format_expr, parse_expression
from skillfactory.tasks.countdown import check_countdown, solve
from skillfactory.tasks.steps import render_steps, spell_result

#: ways a model writes an earlier result as an operand: -7 / (-7), 3/4 / (3/4), 0.75
STYLES = [
    {}, {"negative": "({})"}, {"fraction": "({})"}, {"negative": "({})", "fraction": "({})"}, {"decimal": True},
    {"decimal": True, "negative": "({})", "fraction": "({})"},
]
LAYOUTS = ["Step {k}: {s}", "{s}", "Step {k}. {s}."]
SEPARATORS = ["\n", "; ", "\n\n"]


def step_answer(steps: list[str], layout: str = LAYOUTS[0], sep: str = "\n") -> str:
    return sep.join(layout.format(k=k, s=s) for k, s in enumerate(steps, start=1))


def intermediates(node: Node) -> list:
    """Values of every operation in a tree."""
    if isinstance(node, Num):
        return []
    return intermediates(node.left) + intermediates(node.right) + [evaluate(node)]


def random_tree(rng: random.Random, numbers: list[int]) -> Node:
    """Any tree over the numbers (each once), any operand order: negative and fractional results happen."""
    items: list[Node] = [Num(n, str(n)) for n in numbers]
    while len(items) > 1:
        a = items.pop(rng.randrange(len(items)))
        b = items.pop(rng.randrange(len(items)))
        items.append(BinOp(rng.choice("+-*/"), a, b))
    return items[0]


@st.composite
def trees(draw, max_numbers: int = 6):
    numbers = draw(st.lists(st.integers(1, 30), min_size=2, max_size=max_numbers))
    tree = random_tree(random.Random(draw(st.integers(0, 2**32))), numbers)
    try:
        value = evaluate(tree)
    except ArithError:
        assume(False)
    assume(isinstance(value, int))  # countdown targets are whole; the intermediates need not be
    return numbers, value, tree


# ---- the issue's examples ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("numbers,target,answer", [
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - -7 = 64"),
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - (-7) = 64"),
    ([57, 22, 15], 64, "Step 1: 15 - 22 = (-7)\nStep 2: 57 - (-7) = 64"),
    ([57, 22, 15], 64, "15 - 22 = -7; 57 - -7 = 64"),
    ([57, 22, 15], 64, "Step 1: 22 - 15 = 7\nStep 2: 57 + 7 = 64"),
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 3/4\nStep 2: 8 * 3/4 = 6"),
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 0.75\nStep 2: 8 * 0.75 = 6"),
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 3/4\nStep 2: 8 * (3/4) = 6"),
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 3/4\nStep 2: 3/4 * 8 = 6"),
    ([3, 4, 8], -6, "Step 1: 3 / 4 = 3/4\nStep 2: -(3/4) * 8 = -6"),
    ([3, 4, 8], -6, "Step 1: 3 / 4 = 3/4\nStep 2: 8 * -3/4 = -6"),
    ([3, 4, 8], -6, "Step 1: 3 / 4 = 3/4\nStep 2: 8 * (-3/4) = -6"),
    ([3, 4, 8], 6, "Step 1: 4 / 8 = 1/2\nStep 2: 3 / (1/2) = 6"),
    ([3, 4, 8], 6, "Step 1: 4 / 8 = 1/2\nStep 2: 3 / 1/2 = 6"),  # after '/', 1/2 is the earlier result
    ([3, 4, 8], 6, "Step 1: 4 / 8 = 0.5\nStep 2: 3 / 0.5 = 6"),
    ([3, 4, 8], -12, "Step 1: 4 - 8 = -4\nStep 2: 3 * -4 = -12"),
    ([3, 3, 8, 8], 24, "Step 1: 8 / 3 = 8/3\nStep 2: 3 - 8/3 = 1/3\nStep 3: 8 / 1/3 = 24"),
    ([10, 5, 9, 12, 6], 16, "Step 1: 10 / 5 = 2\nStep 2: 9 / 12 = 3/4\nStep 3: 6 / 3/4 = 8\nStep 4: 8 * 2 = 16"),
    ([57, 22, 15], 64, "**Step 1:** $15 - 22 = -7$\n**Step 2:** $57 - (-7) = 64$"),
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - -7"),  # the last step may omit '= result'
])
def test_issue_examples_verify(numbers, target, answer):
    res = check_countdown(numbers, target, answer)
    assert res.correct, res


@pytest.mark.parametrize("numbers,target,answer,reason", [
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - -7 = 64\nStep 3: 64 - -7 = 71", "reused_number"),
    ([15, 22], 49, "Step 1: 15 - 22 = -7\nStep 2: -7 * -7 = 49", "reused_number"),
    ([15, 22], 49, "Step 1: 15 - 22 = -7\nStep 2: (-7) * (-7) = 49", "reused_number"),
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 3/4\nStep 2: 8 * 3/4 = 6\nStep 3: 6 * 3/4 = 9/2", "reused_number"),
    ([57, 22, 15], 65, "Step 1: 15 - 22 = -8\nStep 2: 57 - -8 = 65", "bad_step"),  # a wrong intermediate
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 0.7\nStep 2: 8 * 0.7 = 5.6", "bad_step"),  # rounding is not exact
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 3/4\nStep 2: 8 * 3/4 = 7", "bad_step"),
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - -9 = 66", "wrong_numbers"),  # not available
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - 7 = 50", "wrong_numbers"),  # 7 is not -7
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 + 7 = 64", "wrong_numbers"),
    ([3, 4, 8], 6, "Step 1: 3 / 4 = 3/4\nStep 2: 3/4 = 3/4\nStep 3: 8 * 3/4 = 6", "reused_number"),
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - (-7 = 64", "unparseable"),
    ([57, 22, 15], 64, "Step 1: 15 - 22\nStep 2: 57 - -7 = 64", "bad_step"),
    ([57, 22, 15], 64, "Step 1: 15 - 22 = -7\nStep 2: 57 - -7 = 64\nStep 3: 1 - 1 = 0", "wrong_numbers"),
    ([57, 22, 15], 79, "Step 1: 15 - 22 = -7\nStep 2: 57 + 22 = 79", "reused_number"),
])
def test_broken_step_answers_are_rejected(numbers, target, answer, reason):
    res = check_countdown(numbers, target, answer)
    assert not res.correct and res.reason == reason, res


def test_only_the_allowed_operators():
    steps = "Step 1: 3 / 4 = 3/4\nStep 2: 8 * 3/4 = 6"
    assert check_countdown([3, 4, 8], 6, steps, operators="*/").correct
    assert check_countdown([3, 4, 8], 6, steps, operators="+*").reason == "bad_operator"
    assert check_countdown([57, 22, 15], 64, "15 - 22 = -7; 57 - -7 = 64", operators="+-").correct


# ---- the general rule: step form == expression form ------------------------------------------------------------
def assert_same_verdict(numbers: list[int], target: int, tree: Node, style: dict, layout: str, sep: str) -> bool:
    expr = format_expr(tree)
    steps = step_answer(render_steps(tree, **style), layout, sep)
    as_expr, as_steps = check_countdown(numbers, target, expr), check_countdown(numbers, target, steps)
    assert as_expr.correct == as_steps.correct, (numbers, target, expr, steps, as_expr, as_steps)
    return as_steps.correct


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(trees(), st.sampled_from(STYLES), st.sampled_from(LAYOUTS), st.sampled_from(SEPARATORS))
def test_any_tree_verifies_in_both_forms(case, style, layout, sep):
    numbers, value, tree = case
    assert assert_same_verdict(numbers, value, tree, style, layout, sep)
    assert not assert_same_verdict(numbers, value + 1, tree, style, layout, sep)  # wrong target: both wrong


def test_random_trees_cover_negative_and_fractional_intermediates():
    rng = random.Random(0)
    seen = {"negative": 0, "fraction": 0}
    for _ in range(600):
        numbers = [rng.randint(1, 12) for _ in range(rng.randint(3, 5))]
        tree = random_tree(rng, numbers)
        try:
            value = evaluate(tree)
        except ArithError:
            continue
        if not isinstance(value, int):
            continue
        inter = intermediates(tree)[:-1]
        seen["negative"] += any(v < 0 for v in inter)
        seen["fraction"] += any(isinstance(v, Fraction) and v.denominator != 1 for v in inter)
        for style in STYLES:
            assert assert_same_verdict(numbers, value, tree, style, LAYOUTS[0], "\n")
    assert seen["negative"] > 50 and seen["fraction"] > 20, seen


def test_solver_solutions_verify_in_both_forms():
    """Solver solutions (exact rationals: negative and fractional intermediates allowed) of generated questions,
    of random (numbers, target) pairs and of classic puzzles that need a fraction, in every step style."""
    cases = [([3, 3, 8, 8], 24), ([1, 5, 5, 5], 24), ([1, 3, 4, 6], 24), ([3, 3, 7, 7], 24), ([57, 22, 15], 64)]
    rng = random.Random(0)
    for num_args in (3, 4, 5):
        task = get_task("countdown", num_args=num_args, max_number=20, max_target=200)
        cases += [(q.fields["numbers"], q.fields["target"]) for q in task.generate(20, seed=num_args)]
        cases += [([rng.randint(1, 10) for _ in range(num_args)], rng.randint(1, 150)) for _ in range(40)]
    odd = 0
    for numbers, target in cases:
        found = solve(numbers, target)
        if found is None:
            continue
        tree = parse_expression(found)
        odd += any(v < 0 or isinstance(v, Fraction) for v in intermediates(tree))
        for style in STYLES:
            for layout, sep in [(LAYOUTS[0], "\n"), (LAYOUTS[1], "; ")]:
                assert assert_same_verdict(numbers, target, tree, style, layout, sep)
    assert odd >= 10, odd  # the solver does use negative or fractional intermediates here


def test_task_check_accepts_dressed_step_answers():
    task = get_task("countdown")
    q = Question(id="x", task="countdown", params=task.params.model_dump(),
                 fields={"numbers": [57, 22, 15], "target": 64}, gold="57 + 22 - 15")
    for text in ["Step 1: 15 - 22 = -7\nStep 2: 57 - (-7) = 64", "$$15 - 22 = -7; 57 - -7 = 64$$",
                 "**Step 1:** 15 - 22 = -7\n**Step 2:** 57 - (-7) = 64."]:
        assert task.check(q, f"<answer>{text}</answer>").correct, text


# ---- broken derivations, generated ------------------------------------------------------------------------------
def _render_with_slip(tree: Node, slip: int, style: dict) -> tuple[list[str], object]:
    """Steps of ``tree`` where operation number ``slip`` states its value plus one and every later step carries
    the wrong value on (a chain that is consistent apart from that one false step); and the final value."""
    steps: list[str] = []
    count = [0]

    def walk(n: Node):
        if isinstance(n, Num):
            return n.value, n.text
        (a, ta), (b, tb) = walk(n.left), walk(n.right)
        v = apply_op(n.op, a, b) + (1 if count[0] == slip else 0)
        count[0] += 1
        steps.append(f"{ta} {n.op} {tb} = {spell_result(v, decimal=style.get('decimal', False))}")
        return v, spell_result(v, **style)

    final = walk(tree)[0]
    return steps, final


def _leaves(node: Node) -> list[Num]:
    return [node] if isinstance(node, Num) else _leaves(node.left) + _leaves(node.right)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(trees(), st.sampled_from(STYLES), st.data())
def test_a_wrong_intermediate_is_rejected(case, style, data):
    numbers, value, tree = case
    slip = data.draw(st.integers(0, len(numbers) - 2))
    try:
        steps, final = _render_with_slip(tree, slip, style)
    except ArithError:
        assume(False)
    res = check_countdown(numbers, final, step_answer(steps))
    assert not res.correct and res.reason == "bad_step", (steps, res)
    # only the stated value is off by one, the later steps use the true value: still rejected
    good = render_steps(tree, **style)
    lhs, _, stated = good[slip].rpartition(" = ")
    broken = [*good[:slip], f"{lhs} = {spell_result(Fraction(stated) + 1)}", *good[slip + 1:]]
    assert not check_countdown(numbers, value, step_answer(broken)).correct


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(trees(), st.sampled_from(STYLES), st.data())
def test_a_number_not_given_is_rejected(case, style, data):
    numbers, _, tree = case
    leaves = _leaves(tree)
    leaf = leaves[data.draw(st.integers(0, len(leaves) - 1))]
    other = data.draw(st.integers(1, 99).filter(lambda v: v not in numbers))
    leaf.value, leaf.text = other, str(other)  # the arithmetic stays true; one number is not given
    try:
        value = evaluate(tree)
    except ArithError:
        assume(False)
    assume(isinstance(value, int) and all(abs(v) != other for v in intermediates(tree)))
    expr = check_countdown(numbers, value, format_expr(tree))
    steps = check_countdown(numbers, value, step_answer(render_steps(tree, **style)))
    assert not expr.correct and expr.reason == "wrong_numbers", expr
    assert not steps.correct and steps.reason == "wrong_numbers", steps


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(trees(), st.sampled_from(STYLES), st.data())
def test_an_intermediate_used_twice_is_rejected(case, style, data):
    numbers, value, tree = case
    values = intermediates(tree)[:-1]  # results of the steps before the last
    assume(values)
    r = spell_result(data.draw(st.sampled_from(values)), **style)
    extra = f"{spell_result(value, **style)} + {r} - {r} = {value}"  # the final value is used, r again, twice
    res = check_countdown(numbers, value, step_answer([*render_steps(tree, **style), extra]))
    assert not res.correct and res.reason == "reused_number", (extra, res)


def test_step_answers_stay_fast():
    """Spans that could each be an earlier result multiply the readings; the search is bounded."""
    nums = [1] * 6
    hostile = "\n".join(["1 + 1 = 2"] * 3 + ["2/1 * 2/1 * 2/1 " + "* 2/1" * 60 + " = 8"]
                        + ["(2) - (2) + 2 = 2"] * 12)
    assert not check_countdown(nums, 8, hostile).correct
    # ~0.5 ms here; the fastest of 3 (one timing on a shared 2-core box can be a scheduler hiccup)
    assert min(_seconds(check_countdown, nums, 8, hostile) for _ in range(3)) < 0.05


def _seconds(f, *args) -> float:
    t0 = time.perf_counter()
    f(*args)
    return time.perf_counter() - t0
