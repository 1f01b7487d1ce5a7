"""The task contract: a seeded question generator with a difficulty knob, and an exact verifier.

A task is one file: a ``Params`` model (its knobs, validated), ``make_question`` (fields + gold for one item),
``statement`` (the task text), and ``check_answer`` (exact verification of an extracted answer, saying why it
is wrong). Everything else - splits, prompt variants, answer extraction, and peeling presentation off the
answer (``**x**``, ``$\\boxed{x}$``, a trailing period; see ``tasks.normalize``) - is shared here, so
``check_answer`` sees the bare answer.

Determinism and splits: item *i* of ``generate(n, seed, split)`` is drawn from ``Random(f"{seed}/{split}/{i}/{k}")``
(k = retry), so any item can be rebuilt alone. Train and test never share a question *by construction*: a
question belongs to the split chosen by a hash of its canonical key, and a generator re-draws until it gets a
question of its own split.
"""

from __future__ import annotations

import hashlib
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from skillfactory.errors import SkillFactoryError
from skillfactory.prompting import VARIANTS, variant_prompt
from skillfactory.records import Question
from skillfactory.tasks.normalize import normalize_answer

#: Split shares, by hash of the canonical question key: the three are disjoint. "validation" is for choosing
#: settings (learning rate, epochs, replay) without looking at test results; "test" is what reports score.
SPLIT_BUCKETS: dict[str, tuple[int, int]] = {"train": (0, 70), "validation": (70, 80), "test": (80, 100)}
MAX_TEXT_CHARS = 200_000  # completions longer than this are not parsed at all
MAX_ANSWER_CHARS = 2_000  # an extracted answer longer than this is "too_long"

_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)


class TaskParamError(SkillFactoryError, ValueError):
    """Bad task parameters; the message names the parameter and the valid range or choices."""


@dataclass(frozen=True)
class CheckResult:
    """Verdict of a verifier. ``reason`` is "ok" when correct, else a short code (no_answer, unparseable,
    wrong_numbers, wrong_value, too_long, ...); ``detail`` is a human sentence."""

    correct: bool
    reason: str
    detail: str = ""

    @classmethod
    def ok(cls) -> CheckResult:
        return _OK  # frozen, so one shared instance is safe (and verification's hot path skips a constructor)

    @classmethod
    def wrong(cls, reason: str, detail: str = "") -> CheckResult:
        return cls(False, reason, detail)


_OK = CheckResult(True, "ok")


class QuestionFieldError(SkillFactoryError, ValueError):
    """A question whose ``fields`` do not fit its task (e.g. a hand-edited questions file)."""


class TaskParams(BaseModel):
    """Base of task knobs: frozen and strict about unknown names."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def extract_answer(text: str) -> str | None:
    """Content of the **last** ``<answer>...</answer>`` block (stripped), or None.

    Blocks are read left to right, each from an opening tag to the first closing tag after it. Linear time:
    a regex like ``<answer>(.*?)</answer>`` with ``findall`` is quadratic on ``"<answer>" * 10_000``.
    """
    if not isinstance(text, str) or len(text) > MAX_TEXT_CHARS:
        return None
    found, pos = None, 0
    while True:
        opening = _ANSWER_OPEN.search(text, pos)
        if opening is None:
            break
        close = _ANSWER_CLOSE.search(text, opening.end())
        if close is None:
            break  # no later block can close either
        found, pos = (opening.end(), close.start()), close.end()
    return None if found is None else text[found[0]:found[1]].strip()


class Task(ABC):
    """Base class of all tasks. Subclasses set ``name``, ``Params`` and implement the abstract methods."""

    name: ClassVar[str]
    Params: ClassVar[type[TaskParams]] = TaskParams
    #: Schema of ``Question.fields`` (None = not checked); see :meth:`validate_question`.
    Fields: ClassVar[type[BaseModel] | None] = None
    #: How many times ``generate`` re-draws an item (other split / unsolvable) before giving up.
    max_draws: ClassVar[int] = 1000

    def __init__(self, **params: Any):
        try:
            self.params = self.Params(**params)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "params"
            valid = ", ".join(self.Params.model_fields)
            raise TaskParamError(
                f"task {self.name!r}: parameter {field!r}: {first['msg']} (parameters: {valid or 'none'})"
            ) from None

    # ---- to implement -------------------------------------------------------------------------------------
    @abstractmethod
    def make_question(self, rng: random.Random) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
        """Draw one question: (fields, gold answer, metadata), or None to ask for another draw."""

    @abstractmethod
    def statement(self, question: Question) -> str:
        """The plain task text for a question (without style or answer-format instructions)."""

    @abstractmethod
    def check_answer(self, question: Question, answer: str) -> CheckResult:
        """Exactly verify an extracted, normalised answer. Must never raise on any string, nor run it as code."""

    def normalize(self, question: Question, answer: str) -> str:
        """The answer as ``check_answer`` sees it: presentation wrappers removed (``tasks.normalize``).

        Override only for a task whose answers legitimately look like a wrapper (see ``reasoning_gym``).
        """
        return normalize_answer(answer)

    def canonical_key(self, fields: dict[str, Any]) -> str:
        """A string that is equal for questions that are the same question (used for split assignment)."""
        return repr(sorted(fields.items()))

    # ---- shared ---------------------------------------------------------------------------------------------
    @property
    def param_tag(self) -> str:
        items = self.params.model_dump()
        return ",".join(f"{k}={v}" for k, v in sorted(items.items()))

    def split_of(self, fields: dict[str, Any]) -> str:
        h = int(hashlib.sha256(f"{self.name}|{self.canonical_key(fields)}".encode()).hexdigest()[:8], 16) % 100
        for split, (lo, hi) in SPLIT_BUCKETS.items():
            if lo <= h < hi:
                return split
        raise AssertionError("SPLIT_BUCKETS must cover 0..99")  # pragma: no cover

    def generate_one(self, index: int, seed: int, split: str = "train", also: tuple[str, ...] = ()) -> Question:
        """Item ``index`` of ``split``; ``also``: further splits whose questions are accepted too (the draw and
        the id still name ``split``) - e.g. a pretraining corpus that may use anything but test."""
        if split not in SPLIT_BUCKETS or any(a not in SPLIT_BUCKETS for a in also):
            raise TaskParamError(f"unknown split {split!r}; expected one of {', '.join(SPLIT_BUCKETS)}")
        for k in range(self.max_draws):
            rng = random.Random(f"{self.name}/{self.param_tag}/{seed}/{split}/{index}/{k}")
            drawn = self.make_question(rng)
            if drawn is None:
                continue
            fields, gold, metadata = drawn
            if self.split_of(fields) != split and self.split_of(fields) not in also:
                continue
            return Question(
                id=f"{self.name}[{self.param_tag}]/{split}/s{seed}/{index:06d}",
                task=self.name,
                params=self.params.model_dump(),
                fields=fields,
                gold=gold,
                split=split,
                metadata=metadata,
            )
        raise TaskParamError(
            f"task {self.name!r} with {self.param_tag}: no {split} question after {self.max_draws} draws; "
            "widen the parameter ranges"
        )

    def generate(self, n: int, seed: int = 0, split: str = "train") -> list[Question]:
        """``n`` questions; item *i* depends only on (params, seed, split, i)."""
        return [self.generate_one(i, seed, split) for i in range(n)]

    def prompt(self, question: Question, variant: str = "original") -> str:
        """The user prompt for a question in one of the 4 variants (see ``prompting.VARIANTS``)."""
        return variant_prompt(self.statement(question), variant)

    @staticmethod
    def extract_answer(text: str) -> str | None:
        return extract_answer(text)

    def check(self, question: Question, text: str) -> CheckResult:
        """Extract the last <answer> from a completion and verify it, saying why it is wrong."""
        answer = extract_answer(text)
        if answer is None:
            return CheckResult.wrong("no_answer", "no <answer>...</answer> block")
        if len(answer) > MAX_ANSWER_CHARS:
            return CheckResult.wrong("too_long", f"answer longer than {MAX_ANSWER_CHARS} characters")
        try:
            return self.check_answer(question, self.normalize(question, answer))
        except (ValueError, ArithmeticError, OverflowError, RecursionError) as e:  # a verifier bug must not stop a run
            return CheckResult.wrong("unparseable", f"{type(e).__name__}: {e}")

    def validate_question(self, question: Question, source: str = "question") -> None:
        """Raise :class:`QuestionFieldError` naming the field when ``question.fields`` does not fit this task.

        Verifiers assume well-formed fields; files from elsewhere are checked with this first (``source`` is
        prefixed to the message, e.g. ``"q.jsonl:12"``).
        """
        if question.task != self.name:
            raise QuestionFieldError(f"{source}: field 'task': {question.task!r} is not task {self.name!r}")
        if self.Fields is None:
            return
        try:
            self.Fields.model_validate(question.fields)
        except ValidationError as e:
            first = e.errors()[0]
            field = ".".join(["fields", *(str(p) for p in first["loc"])])
            raise QuestionFieldError(f"{source}: field '{field}': {first['msg']}") from None

    def verify(self, question: Question, text: str) -> bool:
        return self.check(question, text).correct


__all__ = ["VARIANTS", "CheckResult", "QuestionFieldError", "Task", "TaskParams", "TaskParamError", "extract_answer"]
