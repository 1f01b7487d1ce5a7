"""Long multiplication: the product of an n-digit and an m-digit number. Harder = more digits.

The SkillFactory paper's second procedural task (evaluated at 2-5 digits). The gold is the exact product.

Accepted answers: an integer, written plainly (``1234567``) or with thousands separators used consistently
and in groups of three (``1,234,567`` / ``1 234 567`` / ``1_234_567``; a no-break or thin space counts as a
space). Anything else is rejected, never guessed at: ``1234567.0``, ``1.234.567``, ``12,34,567``, ``\\boxed{..}``,
words, units, an expression.

Verification reasons: ok, no_answer, too_long (more than 40 digits), bad_separators (digits and separators,
but not in groups of three or mixed separators), unparseable (not an integer), wrong_value.
"""

from __future__ import annotations

import random
import re
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from skillfactory.records import Question
from skillfactory.tasks.base import CheckResult, Task, TaskParams

MAX_DIGITS = 40
_SPACES = " \u00a0\u2009\u202f"
_PLAIN = re.compile(r"-?[0-9]+")
_GROUPED = re.compile(r"-?[0-9]{1,3}([,_" + _SPACES + r"])[0-9]{3}(?:\1[0-9]{3})*")
_DIGITS_AND_SEPARATORS = re.compile(r"-?[0-9][0-9,_" + _SPACES + r"]*")


def parse_integer(text: str) -> int | CheckResult:
    """The integer written in ``text`` (strict format, see the module docstring), or the reason it is not one.

    >>> parse_integer("1,234,567")
    1234567
    >>> parse_integer("12,34").reason
    'bad_separators'
    """
    text = text.strip()
    if sum(c.isdigit() for c in text) > MAX_DIGITS or len(text) > 2 * MAX_DIGITS:
        return CheckResult.wrong("too_long", f"more than {MAX_DIGITS} digits")
    if _PLAIN.fullmatch(text):
        return int(text)
    if _GROUPED.fullmatch(text):
        return int(re.sub(r"[^0-9-]", "", text))
    if _DIGITS_AND_SEPARATORS.fullmatch(text):
        return CheckResult.wrong("bad_separators", f"{text!r}: thousands separators must split groups of three")
    return CheckResult.wrong("unparseable", f"{text[:40]!r} is not an integer")


class MultiplicationParams(TaskParams):
    """Knobs: the digit counts of the two factors."""

    digits: int = Field(2, ge=1, le=9, description="digits of the first factor (paper: 2-5)")
    digits_b: int | None = Field(None, ge=1, le=9, description="digits of the second factor (None: = digits)")


class MultiplicationFields(BaseModel):
    a: int = Field(ge=0)
    b: int = Field(ge=0)


class Multiplication(Task):
    """``a x b`` with ``a`` of ``digits`` digits and ``b`` of ``digits_b`` digits (no leading zeros)."""

    name: ClassVar[str] = "multiplication"
    Params: ClassVar[type[TaskParams]] = MultiplicationParams
    Fields: ClassVar[type[BaseModel]] = MultiplicationFields
    params: MultiplicationParams

    def make_question(self, rng: random.Random) -> tuple[dict[str, Any], str, dict[str, Any]]:
        da = self.params.digits
        db = self.params.digits_b or da
        a = rng.randint(10 ** (da - 1), 10**da - 1)
        b = rng.randint(10 ** (db - 1), 10**db - 1)
        return {"a": a, "b": b}, str(a * b), {}

    def canonical_key(self, fields: dict[str, Any]) -> str:
        a, b = sorted((int(fields["a"]), int(fields["b"])))  # a x b and b x a are one question
        return f"{a}x{b}"

    def statement(self, question: Question) -> str:
        f = question.fields
        return (
            "What is the solution to the long multiplication equation below?\n\n"
            f"{f['a']} x {f['b']}\n\n"
            "Give the product as a whole number."
        )

    def check_answer(self, question: Question, answer: str) -> CheckResult:
        got = parse_integer(answer)
        if isinstance(got, CheckResult):
            return got
        want = int(question.fields["a"]) * int(question.fields["b"])
        if got != want:
            return CheckResult.wrong("wrong_value", f"{got} is not {question.fields['a']} x {question.fields['b']}")
        return CheckResult.ok()


__all__ = ["Multiplication", "MultiplicationFields", "MultiplicationParams", "parse_integer"]
