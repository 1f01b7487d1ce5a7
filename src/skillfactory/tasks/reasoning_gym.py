"""Any reasoning-gym dataset as a task (for out-of-domain evaluation): its question text, its scorer.

    >>> from skillfactory.tasks import get_task
    >>> task = get_task("reasoning_gym", dataset="basic_arithmetic", config={"max_terms": 3}, isolate=False)
    >>> q = task.generate(1, seed=0)[0]
    >>> task.verify(q, f"<answer>{q.gold}</answer>")
    True

Determinism and splits: the dataset is built once with ``seed=0``; reasoning-gym draws item *j* from
``Random(seed + j)``, so item *j* depends on *j* alone. Our item *i* of (seed, split) picks ``j`` from the
shared per-item RNG (see ``tasks.base``), so it depends only on (params, seed, split, i), and the split is
decided by a hash of the question text, so train and test never share a question. The reasoning-gym entry
(answer + metadata, needed by its scorer) is stored in ``Question.metadata["entry"]``, with ``index`` = j to
rebuild it; a question is kept only if its gold answer scores >= ``threshold`` after the JSON round trip.

Correct iff ``dataset.score_answer(answer=extracted, entry=entry) >= threshold`` (scores are not binary:
countdown gives 0.05 for a well-formed wrong answer).

Presentation (``**x**``, ``$\\boxed{x}$``, a trailing period) is peeled off the answer before screening and
scoring, as for every task (``tasks.normalize``), except where the question's own gold answer would be changed
by that (a sentence that ends in a period, say): there those characters are content, and the answer is scored as
written.

Security: several scorers evaluate the answer (``eval``, sympy ``parse_expr``; see ``tasks.sandbox``).
Before any scorer sees it, :func:`screen_answer` rejects: answers over ``max_answer_chars``; control
characters; ``__``, backslashes, backticks, ``<<``/``>>``, the words lambda/import/exec/eval; any call ``name(`` or
``)(`` except math functions and names the gold answer itself calls; for numeric answers (gold without
letters) any letter or underscore at all, ``**`` and ``!``; elsewhere ``**`` unless the gold uses it, and then
only as ``base**k`` with a bare base and k <= 99, never chained. What passes is scored in a child process with
a timeout and a memory cap (``isolate=True``, the default), so nothing can hang or exhaust the caller.

Verification reasons: ok, no_answer, too_long, screened (rejected before scoring), timeout, scorer_error,
wrong_value (score below the threshold).
"""

from __future__ import annotations

import json
import random
import re
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from skillfactory.records import Question
from skillfactory.tasks.base import CheckResult, Task, TaskParams
from skillfactory.tasks.normalize import normalize_answer

INDEX_SPACE = 2**31  # item indices j are drawn from [0, INDEX_SPACE)
MATH_FUNCS = frozenset({"sin", "cos", "tan", "exp", "log", "ln", "sqrt", "asin", "acos", "atan", "sinh", "cosh",
                        "tanh", "abs"})
_BANNED = ("__", "\\", "`", "<<", ">>")
_BANNED_WORDS = re.compile(r"\b(lambda|import|exec|eval)\b")  # as words: "important" is fine
_CALL = re.compile(r"([A-Za-z_][A-Za-z_0-9]*)\s*\(")
_CALL_RESULT = re.compile(r"[\)\]]\s*\(")
_POWER_OK = re.compile(r"[A-Za-z0-9]\s*\*\*\s*\(?\s*-?\s*\d{1,2}(?!\d)\s*\)?(?!\s*\*\*)")
_LETTER = re.compile(r"[A-Za-z_]")


def screen_answer(answer: str, gold: str, max_chars: int = 300) -> str | None:
    """Why an answer must not reach a reasoning-gym scorer, or None when it may (see the module docstring).

    >>> screen_answer("__import__('os').getpid()", "42")
    "contains '__'"
    >>> screen_answer("9**9**9", "42")
    "contains '**'"
    >>> screen_answer("-12", "42") is None
    True
    """
    if len(answer) > max_chars:
        return f"longer than {max_chars} characters"
    if any(ord(c) < 32 and c not in "\n\t" or ord(c) == 127 for c in answer):
        return "contains control characters"
    for bad in _BANNED:
        if bad in answer and bad not in gold:
            return f"contains {bad!r}"
    for word in _BANNED_WORDS.findall(answer):
        if word not in _BANNED_WORDS.findall(gold):
            return f"contains {word!r}"
    numeric = not _LETTER.search(gold)
    if numeric:
        if _LETTER.search(answer):
            return "letters in a numeric answer"
        for bad in ("**", "!"):
            if bad in answer:
                return f"contains {bad!r}"
    else:
        allowed = MATH_FUNCS | set(_CALL.findall(gold))
        for name in _CALL.findall(answer):
            if name not in allowed:
                return f"calls {name!r}"
        if _CALL_RESULT.search(answer) and not _CALL_RESULT.search(gold):
            return "calls the result of an expression"
        if "**" in answer:
            if "**" not in gold:
                return "contains '**'"
            if answer.count("**") != len(_POWER_OK.findall(answer)):
                return "a power other than base**k with k <= 99"
    return None


def _jsonable(entry: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(entry, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


@lru_cache(maxsize=16)
def _dataset(name: str, config_json: str) -> Any:
    import reasoning_gym

    return reasoning_gym.create_dataset(name, seed=0, size=INDEX_SPACE, **json.loads(config_json))


class ReasoningGymParams(TaskParams):
    """Which reasoning-gym dataset, its config, and how its score becomes right/wrong."""

    dataset: str = Field(description="a reasoning-gym dataset name, e.g. basic_arithmetic, products, word_sorting")
    config: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of the dataset's config")
    threshold: float = Field(1.0, gt=0.0, le=1.0, description="correct iff score >= threshold")
    max_answer_chars: int = Field(300, ge=1, le=20_000, description="longer answers are screened out")
    isolate: bool = Field(True, description="score in a child process with a timeout and memory cap")
    timeout_s: float = Field(5.0, gt=0, description="per-answer scoring timeout (isolate=True)")
    memory_mb: int = Field(2048, ge=256, description="memory cap of the scoring process (isolate=True)")

    @field_validator("dataset")
    @classmethod
    def _known(cls, v: str) -> str:
        import difflib

        from reasoning_gym.factory import DATASETS

        if v not in DATASETS:
            close = difflib.get_close_matches(v, DATASETS, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ValueError(f"unknown reasoning-gym dataset {v!r}{hint}")
        return v


class ReasoningGymFields(BaseModel):
    question: str
    index: int = Field(ge=0)


class ReasoningGym(Task):
    """Adapter: a reasoning-gym dataset's questions and scorer, screened and isolated."""

    name: ClassVar[str] = "reasoning_gym"
    Params: ClassVar[type[TaskParams]] = ReasoningGymParams
    Fields: ClassVar[type[BaseModel]] = ReasoningGymFields
    params: ReasoningGymParams

    def __init__(self, **params: Any):
        super().__init__(**params)
        self._config_json = json.dumps(self.params.config, sort_keys=True)
        self._worker: Any = None
        try:
            self.dataset = _dataset(self.params.dataset, self._config_json)
        except (TypeError, ValueError, AssertionError) as e:  # reasoning-gym validates configs with assert
            from skillfactory.tasks.base import TaskParamError

            raise TaskParamError(f"task 'reasoning_gym': parameter 'config' for {self.params.dataset!r}: {e}") from None

    @property
    def param_tag(self) -> str:  # the config dict, compactly and stably
        p = self.params
        return f"dataset={p.dataset},config={self._config_json},threshold={p.threshold}"

    def entry(self, question: Question) -> dict[str, Any]:
        """The reasoning-gym entry of a question (stored, else rebuilt from its index)."""
        stored = question.metadata.get("entry")
        if isinstance(stored, dict):
            return stored
        return _jsonable(self.dataset[int(question.fields["index"])])

    def make_question(self, rng: random.Random) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
        j = rng.randrange(INDEX_SPACE)
        entry = _jsonable(self.dataset[j])
        gold = entry.get("answer")
        if not isinstance(gold, str) or not gold.strip():
            return None
        # the gold must verify (scored in-process: it is the dataset's own answer, not model text)
        if float(self.dataset.score_answer(answer=gold, entry=entry)) < self.params.threshold:
            return None
        return {"question": entry["question"], "index": j}, gold, {"entry": entry}

    def canonical_key(self, fields: dict[str, Any]) -> str:
        return str(fields["question"])

    def statement(self, question: Question) -> str:
        return str(question.fields["question"])

    def normalize(self, question: Question, answer: str) -> str:
        """Peel presentation off the answer unless the dataset's gold itself would be altered by that."""
        gold = str(self.entry(question).get("answer") or question.gold)
        return normalize_answer(answer) if normalize_answer(gold) == gold else answer

    def _score(self, answer: str, entry: dict[str, Any], gold: str) -> float | str:
        why = screen_answer(answer, gold, self.params.max_answer_chars)
        if why is not None:
            return f"screened: {why}"
        if not self.params.isolate:
            try:
                return float(self.dataset.score_answer(answer=answer, entry=entry))
            except Exception as e:  # noqa: BLE001 - a scorer's own failure is a wrong answer, not a crash
                return f"{type(e).__name__}: {e}"[:200]
        if self._worker is None:
            from skillfactory.tasks.sandbox import ScoringWorker

            p = self.params
            self._worker = ScoringWorker(p.dataset, p.config, timeout_s=p.timeout_s, memory_mb=p.memory_mb)
        return self._worker.score(answer, entry)

    def check_answer(self, question: Question, answer: str) -> CheckResult:
        entry = self.entry(question)
        score = self._score(answer, entry, str(entry.get("answer") or question.gold))
        if isinstance(score, str):
            if score.startswith("screened: "):
                return CheckResult.wrong("screened", score[len("screened: "):])
            if score == "timeout":
                return CheckResult.wrong("timeout", f"the scorer took longer than {self.params.timeout_s} s")
            return CheckResult.wrong("scorer_error", score)
        if score >= self.params.threshold:
            return CheckResult.ok()
        return CheckResult.wrong("wrong_value", f"score {score:.3f} < threshold {self.params.threshold}")


__all__ = ["ReasoningGym", "ReasoningGymFields", "ReasoningGymParams", "screen_answer"]
