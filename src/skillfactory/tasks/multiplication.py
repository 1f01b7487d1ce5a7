"""Long multiplication: the product of an n-digit and an m-digit number. Harder = more digits.

The SkillFactory paper's second procedural task (evaluated at 2-5 digits). The gold is the exact product.

Accepted answers (after ``Task.check`` peels ``**..**``, ``$..$``, ``\\boxed{..}``, a trailing period; see
``tasks.normalize``):

* an integer, written plainly (``1234567``) or with thousands separators used consistently and in groups of
  three (``1,234,567`` / ``1 234 567`` / ``1_234_567``; a no-break or thin space counts as a space);
* the question restated, then ``=`` and that integer: ``466 x 381 = 177546`` (``x X * × · \\times \\cdot``
  all mean times). The restated factors must be exactly the question's, in either order: an answer that
  multiplies other numbers is not an answer to this question, even when its product is right.

Anything else is rejected, never guessed at: ``1234567.0``, ``1.234.567``, ``12,34,567``, ``177546 or 177547``,
words, units, any other expression.

Verification reasons: ok, no_answer, too_long (more than 40 digits), bad_separators (digits and separators,
but not in groups of three or mixed separators), unparseable (not an integer), wrong_factors (a restated
question with other factors), wrong_value.
"""

from __future__ import annotations

import random
import re
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from skillfactory.records import Question
from skillfactory.tasks.base import CheckResult, Task, TaskParams
from skillfactory.tasks.normalize import normalize_answer

MAX_DIGITS = 40
_SPACES = " \u00a0\u2009\u202f"
_PLAIN = re.compile(r"-?[0-9]+")
_GROUPED = re.compile(r"-?[0-9]{1,3}([,_" + _SPACES + r"])[0-9]{3}(?:\1[0-9]{3})*")
_DIGITS_AND_SEPARATORS = re.compile(r"-?[0-9][0-9,_" + _SPACES + r"]*")
_TIMES = re.compile(r"\\times|\\cdot|[xX*\u00d7\u00b7\u22c5]")


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


def check_product(a: int, b: int, answer: str) -> CheckResult:
    """Verify an answer to ``a x b``: the product, or ``a x b = product`` (see the module docstring).

    >>> check_product(466, 381, "381 \\\\times 466 = 177,546").correct
    True
    >>> check_product(466, 381, "466 x 380 = 177546").reason
    'wrong_factors'
    """
    lhs, eq, rhs = answer.partition("=")
    if eq:
        factors = _TIMES.split(normalize_answer(lhs))
        if len(factors) != 2 or "=" in rhs:
            return CheckResult.wrong("unparseable", f"{answer[:40]!r}: expected 'a x b = product'")
        stated = [parse_integer(f) for f in factors]
        for got in stated:
            if isinstance(got, CheckResult):
                return got
        if sorted(stated) != sorted((a, b)):  # type: ignore[type-var]
            return CheckResult.wrong("wrong_factors", f"{lhs.strip()[:40]!r} is not the question {a} x {b}")
        answer = normalize_answer(rhs)
    got = parse_integer(answer)
    if isinstance(got, CheckResult):
        return got
    if got != a * b:
        return CheckResult.wrong("wrong_value", f"{got} is not {a} x {b}")
    return CheckResult.ok()


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
        return check_product(int(question.fields["a"]), int(question.fields["b"]), answer)


__all__ = ["Multiplication", "MultiplicationFields", "MultiplicationParams", "check_product", "parse_integer"]
