"""The GRPO reward: 1.0 when the task's own verifier accepts the completion's last ``<answer>``, else 0.0.

It follows TRL's reward contract, a plain callable ``f(prompts, completions, **dataset_columns) -> list[float]``.
The verifier needs the whole question (numbers, target, ...), so the GRPO dataset carries it as a JSON column
``question`` (a :class:`~skillfactory.records.Question`); the task is rebuilt from the question itself
(``task_for``), so one reward serves a mixed-task dataset.

The same call records skill usage per completion (``<sample>`` attempts, ``<reflect>`` blocks, verdicts) through
TRL's ``log_metric`` hook, so the train log shows *whether* the model uses the skills as its reward moves.

    >>> reward = VerifierReward()
    >>> reward(prompts=[p], completions=[[{"role": "assistant", "content": "<answer>3*5+7</answer>"}]],
    ...        question=[q.model_dump_json()])
    [1.0]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from skillfactory.evaluation.skills import count_skills
from skillfactory.records import Question
from skillfactory.tasks import Task, task_for

#: Name of the dataset column that carries the question JSON.
QUESTION_COLUMN = "question"


def completion_text(completion: Any) -> str:
    """The text of one completion: a plain string, or chat messages (TRL's conversational format)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(m.get("content") or "" for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return completion.get("content") or ""
    return ""


def as_question(value: Any) -> Question:
    """A Question from a dataset cell: a Question, its dict, or its JSON."""
    if isinstance(value, Question):
        return value
    if isinstance(value, str):
        value = json.loads(value)
    return Question.model_validate(value)


class VerifierReward:
    """Binary verifier reward, with a cache of task objects (one per task name + params)."""

    __name__ = "verifier"  # TRL logs per-function rewards as rewards/<name>/mean

    def __init__(self, tasks: list[Task] | None = None) -> None:
        # Tasks given here are used for their own questions; a user task loaded by dotted path cannot be
        # rebuilt from the question's task name alone, so the GRPO stage passes the task it generated from.
        self._tasks: dict[str, Task] = {_key(t.name, t.params.model_dump()): t for t in tasks or []}

    def _task(self, q: Question) -> Task:
        key = _key(q.task, q.params)
        if key not in self._tasks:
            self._tasks[key] = task_for(q)
        return self._tasks[key]

    def score(self, question: Any, completion: Any) -> float:
        q = as_question(question)
        return 1.0 if self._task(q).verify(q, completion_text(completion)) else 0.0

    def __call__(self, prompts: list[Any], completions: list[Any], question: list[Any] | None = None,
                 log_metric: Callable[[str, float], None] | None = None, **_: Any) -> list[float]:
        if question is None:
            raise ValueError(f"the GRPO dataset needs a {QUESTION_COLUMN!r} column (the question JSON)")
        texts = [completion_text(c) for c in completions]
        rewards = [self.score(q, t) for q, t in zip(question, texts, strict=True)]
        if log_metric is not None and texts:
            counts = [count_skills(t) for t in texts]
            n = len(counts)
            log_metric("skills/attempts", sum(c.attempts for c in counts) / n)
            log_metric("skills/reflections", sum(c.reflections for c in counts) / n)
            log_metric("skills/verdicts", sum(c.verdicts for c in counts) / n)
        return rewards


def _key(name: str, params: dict[str, Any]) -> str:
    return f"{name}|{json.dumps(params, sort_keys=True, default=str)}"


def verifier_reward(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
    """Functional form of :class:`VerifierReward` (a fresh task cache per call)."""
    return VerifierReward()(prompts, completions, **columns)
