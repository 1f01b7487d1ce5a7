"""Column-by-column long multiplication: every value written is a fact, a two-number sum or a digit/carry of the
line's sum; a wrong attempt has exactly one false step; checks reach the verdict their text shows."""

from __future__ import annotations

import random
import re

import pytest

from skillfactory.prompting import parse_verdict
from skillfactory.tasks import get_task
from skillfactory.toy.attempts import mult_attempt
from skillfactory.toy.checks import mult_check
from skillfactory.toy.columns import PLACES, columns, columns_value, render_columns

LINE = re.compile(r"^([a-z ]+): (.+) -> (\d+)(?:, carry (\d+))?$")


def false_steps(lines: list[str]) -> int:
    """How many steps of the written columns are false (our own text, parsed by hand)."""
    bad, carry = 0, 0
    for k, line in enumerate(lines):
        place, body, digit, carry_out = LINE.match(line).groups()
        assert place == PLACES[k]
        steps = [re.fullmatch(r"(\d+) ([*+]) (\d+) = (\d+)", t).groups() for t in body.split(", ")]
        facts = [s for s in steps if s[1] == "*"]
        sums = steps[len(facts):]
        bad += sum(int(a) * int(b) != int(c) for a, _, b, c in facts)
        values = [int(c) for *_, c in facts] + ([carry] if carry else [])
        acc = values[0]
        for (a, _, b, c), v in zip(sums, values[1:]):  # each sum adds the next value to the last one written
            bad += (int(a), int(b)) != (acc, v)
            bad += int(a) + int(b) != int(c)
            acc = int(c)
        assert len(sums) == len(values) - 1
        if k == len(lines) - 1:
            bad += int(digit) != acc
        else:
            carry = int(carry_out or 0)
            bad += (int(digit), carry) != (acc % 10, acc // 10)
    return bad


def test_the_worked_example():
    att = mult_attempt(37, 26, "original", random.Random(0), 1.0, in_order=1.0, steps="columns")
    assert att.text.split("\n") == ["ones: 7 * 6 = 42 -> 2, carry 4",
                                    "tens: 3 * 6 = 18, 7 * 2 = 14, 18 + 14 = 32, 32 + 4 = 36 -> 6, carry 3",
                                    "hundreds: 3 * 2 = 6, 6 + 3 = 9 -> 9",
                                    "<answer>", "962", "</answer>"]


@pytest.mark.parametrize("digits", [2, 3])
def test_right_attempts_are_all_true_steps_and_wrong_ones_have_one_slip(digits):
    task = get_task("multiplication", digits=digits)
    rng = random.Random(digits)
    errors = set()
    for q in task.generate(120, seed=5):
        x, y = int(q.fields["a"]), int(q.fields["b"])
        right = mult_attempt(x, y, "original", rng, 1.0, in_order=1.0, steps="columns")
        assert task.verify(q, right.text) and false_steps(right.text.split("\n")[:-3]) == 0
        wrong = mult_attempt(x, y, "original", rng, 0.0, in_order=1.0, steps="columns")
        assert not task.verify(q, wrong.text), wrong.text
        n_false = false_steps([t for t in wrong.text.split("\n") if LINE.match(t)])
        errors.add(wrong.error)
        if wrong.error == "misread":
            assert n_false == 0 and wrong.a != x
        else:
            assert n_false == 1, wrong.text
    assert errors == {"fact_slip", "sum_slip", "carry_slip", "misread"}


def test_columns_value_reads_the_digits_from_the_bottom_up():
    for a, b in [(99, 99), (10, 10), (123, 45), (7, 8), (905, 61)]:
        cols = columns(a, b)
        assert columns_value(cols) == a * b and false_steps(render_columns(cols)) == 0


@pytest.mark.parametrize("digits", [2, 3])
def test_column_checks_reach_their_verdict(digits):
    task = get_task("multiplication", digits=digits)
    rng = random.Random(10 + digits)
    repeated = 0
    for q in task.generate(60, seed=6):
        x, y = int(q.fields["a"]), int(q.fields["b"])
        att = mult_attempt(x, y, "original", rng, 0.5, in_order=1.0, steps="columns")
        truth = task.verify(q, att.text)
        answer = task.extract_answer(att.text)
        for flip in (False, True):
            text, verdict = mult_check(att, answer, x, y, flip, rng, compare_last=True, steps="columns")
            assert parse_verdict(text) == verdict == (truth != flip)
            lines = text.split("\n")
            said = re.match(r"This gives (\d+); the answer is (\d+): (the same|not the same)\.$", lines[-2])
            assert said and (said.group(3) == "the same") == verdict and said.group(2) == answer
            if not flip:  # an honest check multiplies the other way round and gets the product
                assert lines[1] == f"Check with {y} x {x}:" and int(said.group(1)) == x * y
            elif not truth:  # a mistaken "Correct": it redid the attempt's own columns, slip and all
                repeated += 1
                assert lines[2:-2] == [t for t in att.text.split("\n") if LINE.match(t)]
    assert repeated > 5
