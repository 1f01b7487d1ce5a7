"""Noisy solvers: the error mix and the order of factors are what the preset asks for."""

from __future__ import annotations

import random
import re

import pytest

from skillfactory.tasks import get_task
from skillfactory.toy.attempts import countdown_attempt, mult_attempt
from skillfactory.toy.presets import TINY_COUNTDOWN

STEP = re.compile(r"Step \d+: (\d+) ([+-]) (\d+) = (\d+)")


def test_countdown_error_mix_only_draws_the_kinds_asked_for():
    task = get_task("countdown", num_args=3, **TINY_COUNTDOWN)
    rng = random.Random(0)
    kinds = set()
    for q in task.generate(80, seed=0):
        numbers, target = [int(n) for n in q.fields["numbers"]], int(q.fields["target"])
        att = countdown_attempt(numbers, target, "original", rng, 0.0, "+-", errors={"miss": 1.0})
        kinds.add(att.error)
        if att.error != "miss":
            continue
        # an honest miss: every step is right arithmetic and the numbers are the question's
        for a, op, b, c in STEP.findall(att.text):
            assert (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)
        assert sorted(att.order) == sorted(numbers)
    assert kinds <= {"miss", "misread"}  # misread only where every chain hits the target (no miss exists)
    assert "miss" in kinds


def test_multiplication_in_order_keeps_the_question_order():
    rng = random.Random(0)
    pairs = [(rng.randint(10, 99), rng.randint(10, 99)) for _ in range(60)]
    kept = sum(mult_attempt(x, y, "original", rng, 1.0, in_order=1.0).a == x for x, y in pairs)
    either = sum(mult_attempt(x, y, "original", rng, 1.0).a == x for x, y in pairs)
    assert kept == len(pairs) and 10 < either < 50


def _value(expr: str) -> int:
    """A sum of products of integers, e.g. "30 x 20 + 7 x 20" (our own text, parsed by hand: never eval)."""
    total = 0
    for term in expr.split(" + "):
        prod = 1
        for factor in term.split(" x "):
            prod *= int(factor)
        total += prod
    return total


def false_claims(text: str) -> int:
    """How many "left = right" links in the attempt's working are false."""
    bad = 0
    for line in text.split("\n"):
        if " = " not in line or line.startswith(("Plan", "I ", "So ")):
            continue
        sides = line.split(" = ")
        bad += sum(_value(l) != _value(r) for l, r in zip(sides, sides[1:]))
    return bad


@pytest.mark.parametrize("digits", [2, 3])
def test_digit_step_attempts_write_single_digit_facts_and_one_slip_when_wrong(digits):
    task = get_task("multiplication", digits=digits)
    rng = random.Random(digits)
    errors, n_facts = set(), 0
    for q in task.generate(80, seed=4):
        x, y = int(q.fields["a"]), int(q.fields["b"])
        right = mult_attempt(x, y, "original", rng, 1.0, in_order=1.0, steps="digits")
        assert task.verify(q, right.text) and false_claims(right.text) == 0
        partial_lines = [t for t in right.text.split("\n") if t.count(" = ") == 3]  # "a x p = facts = values = v"
        facts = [a for t in partial_lines for a in re.findall(r"(\d+) x \d+", t.split(" = ")[1])]
        assert all(len(a.rstrip("0")) == 1 for a in facts)  # every fact is one digit (and zeros) times a part
        n_facts += len(facts)  # every fact is one digit (and zeros) times a part
        wrong = mult_attempt(x, y, "original", rng, 0.0, in_order=1.0, steps="digits")
        assert not task.verify(q, wrong.text)
        errors.add(wrong.error)
        if wrong.error == "misread":  # right working on a misread factor
            assert false_claims(wrong.text) == 0 and wrong.a != x
        else:
            assert false_claims(wrong.text) == 1, wrong.text
    assert errors == {"misread", "partial_slip", "carry_slip", "shift"} and n_facts > 80


def test_digit_steps_example():
    att = mult_attempt(37, 26, "original", random.Random(0), 1.0, in_order=1.0, steps="digits")
    assert att.text.split("\n") == ["37 x 26 = 37 x 20 + 37 x 6",
                                    "37 x 20 = 30 x 20 + 7 x 20 = 600 + 140 = 740",
                                    "37 x 6 = 30 x 6 + 7 x 6 = 180 + 42 = 222",
                                    "740 + 222 = 962", "<answer>", "962", "</answer>"]
    with pytest.raises(ValueError, match="steps must be one of"):
        mult_attempt(37, 26, "original", random.Random(0), 1.0, steps="lattice")
