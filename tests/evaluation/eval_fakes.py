"""Test doubles for evaluation tests: a tiny exact task and a scripted backend.

``AddTask`` ("addsum") asks for a + b; ``ScriptedBackend`` returns fixed texts chosen by a script function,
and records every request it saw (so tests can check budget forcing's cut-and-continue prefixes).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from pydantic import Field

from skillfactory.generation.base import Completion, GenerationRequest, SamplingParams
from skillfactory.tasks.base import CheckResult, Task, TaskParams

TASK_PATH = "eval_fakes:AddTask"


class AddParams(TaskParams):
    digits: int = Field(1, ge=1, le=3)


class AddTask(Task):
    name = "addsum"
    Params = AddParams

    def make_question(self, rng: random.Random):
        lo, hi = 10 ** (self.params.digits - 1), 10 ** self.params.digits - 1
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return {"a": a, "b": b}, str(a + b), {}

    def statement(self, q):
        return f"What is {q.fields['a']} + {q.fields['b']}?"

    def check_answer(self, q, answer):
        if not re.fullmatch(r"-?\d{1,12}", answer.strip()):
            return CheckResult.wrong("unparseable", "not an integer")
        return CheckResult.ok() if int(answer) == q.fields["a"] + q.fields["b"] else CheckResult.wrong("wrong_value")


def question_numbers(request: GenerationRequest) -> tuple[int, int]:
    m = re.search(r"What is (\d+) \+ (\d+)\?", request.messages[-1]["content"])
    return int(m.group(1)), int(m.group(2))


Script = Callable[[GenerationRequest, int, SamplingParams], str]


class ScriptedBackend:
    """Returns ``script(request, completion_index, params)`` for every completion; tokens = words."""

    name = "scripted"

    def __init__(self, script: Script, fail_after_calls: int | None = None):
        self.script = script
        self.calls: list[tuple[list[GenerationRequest], SamplingParams]] = []
        self.fail_after_calls = fail_after_calls

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress=None):
        if self.fail_after_calls is not None and len(self.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated crash")
        self.calls.append((list(requests), params))
        out = []
        for req in requests:
            comps = []
            for i in range(params.n):
                text = self.script(req, i, params)
                words = text.split()
                if len(words) > params.max_new_tokens:  # honour the cap like a real backend
                    text = " ".join(words[: params.max_new_tokens])
                    comps.append(Completion(text, params.max_new_tokens, "length"))
                else:
                    comps.append(Completion(text, len(words), "stop"))
            out.append(comps)
        return out


def right_answer_script(req: GenerationRequest, i: int, params: SamplingParams) -> str:
    a, b = question_numbers(req)
    return f"a plain answer <answer>{a + b if i % 2 == 0 else a + b + 1}</answer>"


def make_backend(model: str, **options) -> ScriptedBackend:
    """Factory for ``backend: "eval_fakes:make_backend"`` (CLI tests): even samples right, odd ones wrong."""
    return ScriptedBackend(right_answer_script)


class SubTask(AddTask):
    """``subdiff``: a - b; a second task so that tests have an out-of-domain entry."""

    name = "subdiff"

    def make_question(self, rng: random.Random):
        fields, _, meta = super().make_question(rng)
        return fields, str(fields["a"] - fields["b"]), meta

    def statement(self, q):
        return f"What is {q.fields['a']} - {q.fields['b']}?"

    def check_answer(self, q, answer):
        if not re.fullmatch(r"-?\d{1,12}", answer.strip()):
            return CheckResult.wrong("unparseable", "not an integer")
        return CheckResult.ok() if int(answer) == q.fields["a"] - q.fields["b"] else CheckResult.wrong("wrong_value")


def question_of(request: GenerationRequest) -> tuple[str, int, int]:
    """(op, a, b) of an addsum or subdiff prompt."""
    m = re.search(r"What is (\d+) ([+-]) (\d+)\?", request.messages[-1]["content"])
    return m.group(2), int(m.group(1)), int(m.group(3))
