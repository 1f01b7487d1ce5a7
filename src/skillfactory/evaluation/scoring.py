"""Scoring of one completion: the verifier's verdict, the extracted answer and the skill usage, as a record.

Verification is memoised on (question, extracted answer) and tasks are built once per (name, params): an
answer repeated across samples and attempts is verified once, which matters for reasoning-gym tasks whose
scorer runs in a sandboxed child process.
"""

from __future__ import annotations

import json
from typing import Any

from skillfactory.evaluation.skills import analyze_answer
from skillfactory.evaluation.suite import ResolvedEntry
from skillfactory.records import Question, Record
from skillfactory.tasks import get_task


class EvalSample(Record):
    """One scored completion."""

    entry: str  # suite entry label
    task: str
    params: dict[str, Any]
    question_id: str
    index: int  # sample index within the question
    mode: str = "plain"  # plain | count (forced continuations) | tokens (thinking-token budget)
    budget: int | None = None
    prompt: str
    gold: str
    text: str
    extracted: str | None
    correct: bool
    why: str
    n_tokens: int
    finish_reason: str
    skip_reason: str | None = None
    skills: dict[str, Any]
    forcing: dict[str, Any] | None = None  # forced, forced_answer, closed_thinking, generated_tokens

    @property
    def key(self) -> tuple:
        return (self.entry, self.mode, self.budget, self.question_id, self.index)


_TASKS: dict[str, Any] = {}
_CHECKS: dict[tuple[str, str | None], Any] = {}
_CHECK_CACHE_MAX = 200_000


def task_of(name: str, params: dict[str, Any]) -> Any:
    """Tasks are rebuilt once per (name, params), not per sample (reasoning-gym builds a dataset)."""
    key = f"{name}|{json.dumps(params, sort_keys=True)}"
    if key not in _TASKS:
        _TASKS[key] = get_task(name, **params)
    return _TASKS[key]


def _check(task: Any, q: Question, text: str) -> Any:
    """``task.check`` memoised on (question, extracted answer): an answer repeated across samples and attempts
    is verified once (a sandboxed reasoning-gym scorer costs a process start per call)."""
    answer = task.extract_answer(text)
    key = (q.id, answer)
    if key not in _CHECKS:
        if len(_CHECKS) >= _CHECK_CACHE_MAX:
            _CHECKS.clear()
        _CHECKS[key] = task.check(q, text if answer is None else f"<answer>{answer}</answer>")
    return _CHECKS[key]


def score(entry: ResolvedEntry, q: Question, index: int, prompt: str, text: str, n_tokens: int, finish: str,
          skip_reason: str | None = None, mode: str = "plain", budget: int | None = None,
          forcing: dict[str, Any] | None = None) -> EvalSample:
    """Verify one completion and measure its skill usage."""
    task = task_of(q.task, q.params)
    if finish == "skipped":
        correct, why, extracted = False, "skipped", None
    else:
        res = _check(task, q, text)
        correct, why, extracted = res.correct, res.reason, task.extract_answer(text)
    skills = analyze_answer(text, lambda t: _check(task, q, t).correct).as_dict()
    return EvalSample(entry=entry.label, task=q.task, params=q.params, question_id=q.id, index=index, mode=mode,
                      budget=budget, prompt=prompt, gold=q.gold, text=text, extracted=extracted, correct=correct,
                      why=why, n_tokens=n_tokens, finish_reason=finish, skip_reason=skip_reason, skills=skills,
                      forcing=forcing)


__all__ = ["EvalSample", "score", "task_of"]
