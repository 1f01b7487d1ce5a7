"""Task registry: name -> task class, imported lazily so listing tasks never imports heavy libraries.

    >>> task = get_task("countdown", num_args=3)
    >>> qs = task.generate(10, seed=0)
    >>> task.verify(qs[0], f"<answer>{qs[0].gold}</answer>")
    True

A user task is given as a dotted import path, ``"my_pkg.my_module:MyTask"`` (or ``my_pkg.my_module.MyTask``).
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from skillfactory.errors import SkillFactoryError
from skillfactory.tasks.base import CheckResult, Task, TaskParamError, TaskParams, extract_answer

#: name -> "module:Class". One line per task; a new task is one file plus one line here.
REGISTRY: dict[str, str] = {
    "countdown": "skillfactory.tasks.countdown:Countdown",
    "multiplication": "skillfactory.tasks.multiplication:Multiplication",
    "letter_countdown": "skillfactory.tasks.letter_countdown:LetterCountdown",
    "acronym": "skillfactory.tasks.acronym:Acronym",
    "reasoning_gym": "skillfactory.tasks.reasoning_gym:ReasoningGym",
}


class UnknownTaskError(SkillFactoryError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def list_tasks() -> list[str]:
    return sorted(REGISTRY)


def _load(path: str) -> type[Task]:
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UnknownTaskError(f"cannot import task {path!r}: {e}") from None
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise UnknownTaskError(f"{path!r} is not a skillfactory.tasks.Task subclass")
    return cls


def get_task_class(name: str) -> type[Task]:
    if name in REGISTRY:
        return _load(REGISTRY[name])
    if "." in name or ":" in name:
        return _load(name)
    close = difflib.get_close_matches(name, REGISTRY, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownTaskError(f"unknown task {name!r}{hint} (tasks: {', '.join(list_tasks())})")


def get_task(name: str, **params: Any) -> Task:
    """Build a task by registry name or dotted path, validating its parameters."""
    return get_task_class(name)(**params)


def task_problem(name: str, params: dict[str, Any]) -> str | None:
    """Why ``get_task(name, **params)`` fails (an unknown task or parameter, in one line), or None: what a file
    that names a task (a recipe, a suite) checks when it is loaded."""
    try:
        get_task(name, **params)
    except (UnknownTaskError, TaskParamError) as e:
        return str(e)
    return None


def task_for(question: Any) -> Task:
    """The task that generated a Question (rebuilt from the question's own task name and params)."""
    return get_task(question.task, **question.params)


__all__ = [
    "REGISTRY", "CheckResult", "Task", "TaskParamError", "TaskParams", "UnknownTaskError",
    "extract_answer", "get_task", "get_task_class", "list_tasks", "task_for", "task_problem",
]
