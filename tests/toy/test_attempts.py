"""Noisy solvers: the error mix and the order of factors are what the preset asks for."""

from __future__ import annotations

import random
import re

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
