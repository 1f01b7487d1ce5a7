"""The arithmetic parser: precedence and exactness, agreement of the two evaluation paths, and a verifier
cross-check against an independent reference on random expression trees."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.tasks.arith import (
    ArithError, BinOp, Neg, Num, compile_statement, eval_rpn, evaluate, format_expr, parse_expression, tokenize,
)
from skillfactory.tasks.countdown import check_countdown
from skillfactory.tasks.multiplication import parse_integer


@pytest.mark.parametrize("text,value", [
    ("2 - 3 - 4", -5), ("2 / 3 / 4", Fraction(1, 6)), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("-2 * 3", -6),
    ("- -2", 2), ("8 / (3 - 8 / 3)", 24), ("2 * (3 + (4 - 1)) / 4", 3), ("1.5 * 2", 3), ("7 ÷ 2 × 2", 7),
    ("10 − 4", 6), ("2 \\cdot 3", 6),
])
def test_values(text, value):
    assert evaluate(parse_expression(text)) == value
    lhs, _, _ = compile_statement(text)
    assert eval_rpn(lhs) == value


@pytest.mark.parametrize("text,reason", [
    ("", "unparseable"), ("2 +", "unparseable"), ("* 2", "unparseable"), ("(2", "unparseable"), ("2)", "unparseable"),
    ("2 2", "unparseable"), ("2 (3)", "unparseable"), ("2 ** 3", "bad_operator"), ("2 ^ 3", "bad_operator"),
    ("1 / 0", "division_by_zero"), ("1 / (2 - 2)", "division_by_zero"), ("2 = 3 = 4", "unparseable"),
    ("a", "unparseable"), ("1e5", "unparseable"), ("(" * 41 + "1" + ")" * 41, "too_deep"), ("-" * 41 + "1", "too_deep"),
])
def test_errors(text, reason):
    with pytest.raises(ArithError) as e:
        lhs, _, rhs = compile_statement(text)
        eval_rpn(lhs)
        if rhs is not None:
            eval_rpn(rhs)
    assert e.value.reason == reason


def test_size_caps():
    with pytest.raises(ArithError, match="digits"):
        tokenize("1" * 31)
    big = " * ".join(["999999999999999999999999999999"] * 14)  # ~420 digits: over MAX_BITS
    with pytest.raises(ArithError) as e:
        eval_rpn(compile_statement(big)[0])
    assert e.value.reason == "too_large"


# ---- random trees -----------------------------------------------------------------------------------------
def _trees(max_leaves=6):
    leaf = st.integers(1, 30).map(lambda v: Num(v, str(v)))
    return st.recursive(
        leaf,
        lambda kids: st.one_of(
            st.tuples(st.sampled_from("+-*/"), kids, kids).map(lambda t: BinOp(*t)),
            kids.map(Neg),
        ),
        max_leaves=max_leaves,
    )


def _reference(node):
    """Independent exact evaluation (None on division by zero)."""
    if isinstance(node, Num):
        return Fraction(node.value)
    if isinstance(node, Neg):
        v = _reference(node.operand)
        return None if v is None else -v
    a, b = _reference(node.left), _reference(node.right)
    if a is None or b is None:
        return None
    if node.op == "/":
        return None if b == 0 else a / b
    return {"+": a + b, "-": a - b, "*": a * b}[node.op]


def _leaves(node):
    if isinstance(node, Num):
        return [node.value]
    if isinstance(node, Neg):
        return _leaves(node.operand)
    return _leaves(node.left) + _leaves(node.right)


@settings(max_examples=300, deadline=None)
@given(_trees())
def test_print_parse_round_trip(tree):
    text = format_expr(tree)
    want = _reference(tree)
    lhs, nums, _ = compile_statement(text)
    assert [n.value for n in nums] == _leaves(tree)
    if want is None:
        with pytest.raises(ArithError):
            eval_rpn(lhs)
    else:
        assert eval_rpn(lhs) == want == evaluate(parse_expression(text))


@settings(max_examples=300, deadline=None)
@given(_trees(), st.lists(st.integers(1, 30), min_size=1, max_size=6), st.integers(-50, 200), st.booleans())
def test_countdown_verifier_matches_definition(tree, numbers, target, use_all):
    """Right iff the value is the target and the literals fit the numbers (all of them, or a sub-multiset)."""
    text = format_expr(tree)
    value, used = _reference(tree), Counter(_leaves(tree))
    if use_all:
        fits = used == Counter(numbers)
    else:
        fits = not (used - Counter(numbers))
    expected = value is not None and value == target and fits
    assert check_countdown(numbers, target, text, use_all=use_all).correct == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**30), st.integers(-10**30, 10**30), st.sampled_from(["", ",", " ", "_"]))
def test_multiplication_parse(value, other, sep):
    text = f"{value:,}".replace(",", sep) if sep else str(value)
    assert parse_integer(text) == value
    got = parse_integer(str(other))
    assert got == other and (got == value) == (other == value)
