"""Countdown: combine the given numbers with + - * / into an expression that equals the target.

The SkillFactory paper's training task (train on 3 numbers, test on 4-6). Every generated question is solvable
*by construction*: the generator builds a random solution tree over the drawn numbers (whole, non-negative
intermediate results, exact divisions only, as in the classic game) and takes its value as the target, so the
tree is the reference solution (``gold``). ``solve`` is an exhaustive exact solver over the rationals for
anyone who needs to know whether an arbitrary (numbers, target) pair is solvable.

Accepted answers (inside ``<answer>``, after ``Task.check`` peels ``**..**``, ``$..$``, ``\\(..\\)``,
``\\boxed{..}``, a trailing period; see ``tasks.normalize``):

* one expression, optionally followed by ``= target``: ``(55 - 36) * 19 - 251`` / ``55 + 36 + 19 = 110``
  (``x × · \\times \\cdot`` mean ``*``, ``÷ \\div`` mean ``/``; see ``tasks.arith``);
* steps, one per line (or separated by ``;`` / ``,``), each ``[Step k:] expr = result``, where an operand is a
  given number or the result of an earlier step: ``Step 1: 55 + 36 = 91`` / ``Step 2: 91 + 19 = 110``.
  Results may be negative or fractional and are then written as values: ``Step 1: 15 - 22 = -7`` /
  ``Step 2: 57 - (-7) = 64``, or ``3 / 4 = 3/4`` (or ``= 0.75``) / ``8 * 3/4 = 6``. A step answer verifies
  exactly when its expression form does (see ``tasks.steps``).

Verification reasons (``CheckResult.reason``):

==================  ======================================================================================
ok                  correct
no_answer           no ``<answer>`` block (set by ``Task.check``)
too_long            answer over the length / token / step caps
unparseable         not an expression of numbers, ``+ - * /``, parentheses (unknown symbol, words, ...)
bad_operator        an operator not in the task's ``operators``, exponentiation (``**``, ``^``), or negation
too_deep            parentheses nested deeper than the cap
too_large           a literal or an intermediate value beyond the size caps
wrong_numbers       a number that is not among the given numbers (nor an earlier step's result)
reused_number       a given number used more often than it was given, or an earlier result used twice
unused_number       (use_all) a given number left unused
division_by_zero    a division by zero anywhere
bad_step            a stated equality that is false (``3 + 5 = 9``), or a step without ``= result``
unused_result       a step whose result is never used by a later step
wrong_value         the value is not the target (or the answer claims ``= N`` with N != target)
==================  ======================================================================================

Arithmetic is exact (``int`` / ``Fraction``): ``7 / 2 * 2`` is 7; intermediate fractions are allowed in
answers.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator, model_validator

from skillfactory.records import Question
from skillfactory.tasks.arith import MAX_EXPR_CHARS, BinOp, Node, Num, Value, format_expr
from skillfactory.tasks.base import CheckResult, Task, TaskParams
from skillfactory.tasks.normalize import normalize_answer
from skillfactory.tasks.steps import verify_steps

MAX_STEPS = 20  # more statements than this in one answer is "too_long"
_SPLIT = re.compile(r"(?i)(?:\*\*)?\bstep\s*\d+\s*[:.)](?:\*\*)?|[\n;,]")  # "**Step 1:**" too
_MULTI = re.compile(r"[\n;,]|step", re.IGNORECASE)
_ALL_OPS = "+-*/"


class CountdownParams(TaskParams):
    """Knobs of a countdown question. Harder = more numbers (``num_args``)."""

    num_args: int = Field(3, ge=2, le=6, description="how many numbers are given")
    min_number: int = Field(1, ge=1, le=1_000_000, description="smallest number (>= 1: no zero, no negatives)")
    max_number: int = Field(100, ge=1, le=1_000_000, description="largest number")
    min_target: int = Field(10, ge=1, description="smallest target")
    max_target: int = Field(1000, ge=1, le=10**12, description="largest target")
    operators: str = Field(_ALL_OPS, description="allowed operators, a subset of '+-*/'")
    use_all: bool = Field(True, description="True: each number exactly once; False: at most once")

    @field_validator("operators")
    @classmethod
    def _ops(cls, v: str) -> str:
        bad = sorted(set(v) - set(_ALL_OPS))
        if bad or not v:
            raise ValueError(f"operators must be a non-empty subset of '+-*/' (got {v!r})")
        return "".join(op for op in _ALL_OPS if op in v)  # canonical order: the same task gets the same ids

    @model_validator(mode="after")
    def _ranges(self) -> CountdownParams:
        if self.min_number > self.max_number:
            raise ValueError(f"min_number ({self.min_number}) must be <= max_number ({self.max_number})")
        if self.min_target > self.max_target:
            raise ValueError(f"min_target ({self.min_target}) must be <= max_target ({self.max_target})")
        return self


class CountdownFields(BaseModel):
    """What a countdown question must hold in ``Question.fields``."""

    numbers: list[int] = Field(min_length=1, max_length=12)
    target: int


# ---- verification ------------------------------------------------------------------------------------------
def split_statements(answer: str) -> list[str]:
    """Split an answer into statements on newlines, ``;``, ``,`` and ``Step k:`` markers, each one normalised
    (trailing dots, ``$..$``, ``**..**`` dropped: models dress up each step, not just the whole answer)."""
    return [p for p in (normalize_answer(piece.strip().rstrip(".")) for piece in _SPLIT.split(answer)) if p]


def check_countdown(
    numbers: list[int], target: int, answer: str, operators: str = _ALL_OPS, use_all: bool = True
) -> CheckResult:
    """Exactly verify a countdown answer (an expression or steps; see the module docstring for the reasons).

    >>> check_countdown([3, 5, 7], 22, "3 * 5 + 7").correct
    True
    >>> check_countdown([3, 5, 7], 22, "3 * 7 + 5 - 4").reason
    'wrong_numbers'
    """
    if len(answer) > MAX_EXPR_CHARS:
        return CheckResult.wrong("too_long", f"answer longer than {MAX_EXPR_CHARS} characters")
    # one plain expression (the common case) skips the statement splitter
    simple = answer.strip().rstrip(".")
    pieces = [simple] if simple and not _MULTI.search(simple) else split_statements(answer)
    if not pieces:
        return CheckResult.wrong("unparseable", "empty answer")
    if len(pieces) > MAX_STEPS:
        return CheckResult.wrong("too_long", f"more than {MAX_STEPS} steps")
    return verify_steps(numbers, target, pieces, operators, use_all)


# ---- solving and generation --------------------------------------------------------------------------------
def _div(a: Value, b: Value) -> Value:
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b
    q = Fraction(a) / b
    return q.numerator if q.denominator == 1 else q


def _combine(a: Value, b: Value, operators: str) -> list[tuple[Value, str, bool]]:
    """Results of a op b (and b op a for - and /): (value, op, swapped)."""
    out: list[tuple[Value, str, bool]] = []
    if "+" in operators:
        out.append((a + b, "+", False))
    if "*" in operators:
        out.append((a * b, "*", False))
    if "-" in operators:
        out.append((a - b, "-", False))
        out.append((b - a, "-", True))
    if "/" in operators:
        if b != 0:
            out.append((_div(a, b), "/", False))
        if a != 0:
            out.append((_div(b, a), "/", True))
    return out


def _partner(a: Value, target: Value, operators: str) -> list[tuple[Value, str, bool]]:
    """Values b with ``a op b == target`` (or ``b op a`` when swapped)."""
    out: list[tuple[Value, str, bool]] = []
    if "+" in operators:
        out.append((target - a, "+", False))
    if "*" in operators and a != 0:
        out.append((_div(target, a), "*", False))
    if "-" in operators:
        out.append((a - target, "-", False))
        out.append((a + target, "-", True))
    if "/" in operators and a != 0:
        if target != 0:
            out.append((_div(a, target), "/", False))
        out.append((target * a, "/", True))
    return out


def solve(numbers: list[int], target: int, operators: str = _ALL_OPS, use_all: bool = True) -> str | None:
    """One expression over ``numbers`` equal to ``target`` (exact rationals), or None if there is none.

    Dynamic programming over subsets: every value each proper subset of the numbers can make (with one
    expression for it), then, per subset, a direct look-up of the partner value that would hit the target
    (so the largest subsets are never enumerated in full). 6 numbers from 1-100: about 2 s when unsolvable.

    >>> solve([3, 5, 7], 22)
    '7 + 3 * 5'
    >>> solve([3, 5, 7], 1000) is None
    True
    """
    n = len(numbers)
    if n == 0:
        return None
    full = (1 << n) - 1
    vals: dict[int, dict[Value, Node]] = {1 << i: {x: Num(x, str(x))} for i, x in enumerate(numbers)}
    if not use_all and target in numbers or n == 1 and numbers[0] == target:
        return str(target)
    for mask in sorted(range(1, full + 1), key=lambda m: (bin(m).count("1"), m)):
        if mask & (mask - 1) == 0:
            continue
        check = mask == full or not use_all
        build = mask != full
        made: dict[Value, Node] = {}
        sub = (mask - 1) & mask
        while sub:
            other = mask ^ sub
            if sub < other:
                small, big = (sub, other) if len(vals[sub]) <= len(vals[other]) else (other, sub)
                if check:
                    for a, na in vals[small].items():
                        for b, op, swapped in _partner(a, target, operators):
                            nb = vals[big].get(b)
                            if nb is not None and not (op == "/" and b == 0):
                                return format_expr(BinOp(op, nb, na) if swapped else BinOp(op, na, nb))
                if build:
                    for a, na in vals[sub].items():
                        for b, nb in vals[other].items():
                            for v, op, swapped in _combine(a, b, operators):
                                if v not in made:
                                    made[v] = BinOp(op, nb, na) if swapped else BinOp(op, na, nb)
            sub = (sub - 1) & mask
        if build:
            vals[mask] = made
    return None


def random_solution(
    numbers: list[int], rng: random.Random, operators: str = _ALL_OPS
) -> tuple[str, int, list[str]] | None:
    """A random expression using every number once, with whole non-negative intermediate results.

    Returns (expression, value, steps) with steps like ``"55 + 36 = 91"``, or None when no operator fits a
    drawn pair (only possible for operator sets without + and *). Used by the generator, and reusable to
    build (correct) attempts for a corpus.
    """
    items: list[tuple[int, Node]] = [(n, Num(n, str(n))) for n in numbers]
    steps: list[str] = []
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, na), (b, nb) = items[i], items[j]
        if a < b:
            (a, na), (b, nb) = (b, nb), (a, na)
        choices = [op for op in operators if op in "+*" or (op == "-" and a != b) or (op == "/" and b > 1 and a % b == 0)]
        if not choices:
            return None
        op = rng.choice(choices)
        v = a + b if op == "+" else a * b if op == "*" else a - b if op == "-" else a // b
        steps.append(f"{a} {op} {b} = {v}")
        items = [x for k, x in enumerate(items) if k != i and k != j] + [(v, BinOp(op, na, nb))]
    value, node = items[0]
    return format_expr(node), value, steps


class Countdown(Task):
    """Countdown with ``num_args`` numbers in [min_number, max_number] and a target in [min_target, max_target]."""

    name: ClassVar[str] = "countdown"
    Params: ClassVar[type[TaskParams]] = CountdownParams
    Fields: ClassVar[type[BaseModel]] = CountdownFields
    params: CountdownParams

    def make_question(self, rng: random.Random) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
        p = self.params
        numbers = [rng.randint(p.min_number, p.max_number) for _ in range(p.num_args)]
        built = random_solution(numbers, rng, p.operators)
        if built is None:
            return None
        gold, target, steps = built
        if not p.min_target <= target <= p.max_target:
            return None
        if not p.use_all and target in numbers:  # the answer "target" alone would be valid
            return None
        return {"numbers": numbers, "target": target}, gold, {"solution_steps": steps}

    def canonical_key(self, fields: dict[str, Any]) -> str:
        return f"{sorted(fields['numbers'])}->{fields['target']}"

    def statement(self, question: Question) -> str:
        f = question.fields
        ops = self.params.operators
        rule = "each number must be used exactly once" if self.params.use_all else "each number can be used at most once"
        example = f"(1 {ops[0]} 2) {ops[-1]} 3"
        return (
            f"Using the numbers {list(f['numbers'])}, create an equation that equals {f['target']}. "
            f"You can use basic arithmetic operations ({', '.join(ops)}) and {rule}. "
            f"Write the answer as one expression, for example {example}."
        )

    def check_answer(self, question: Question, answer: str) -> CheckResult:
        f = question.fields
        return check_countdown(list(f["numbers"]), int(f["target"]), answer, self.params.operators, self.params.use_all)


__all__ = [
    "Countdown", "CountdownFields", "CountdownParams", "check_countdown", "random_solution", "solve",
    "split_statements",
]
