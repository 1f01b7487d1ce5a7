"""The generation contract shared by every backend (hf, vllm, openai) and every stage that generates.

A request is a chat (list of ``{"role", "content"}`` messages) plus an optional ``prefix``: a partial assistant
text to continue (budget forcing cuts an answer at ``</think>`` and continues from ``... <sample>``).
A backend returns, per request, ``params.n`` completions with their text, generated-token count and finish
reason, in request order. Completions are deterministic given ``params.seed`` (on one machine and backend).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1  # completions per request
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off (transformers would silently default to 50)
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()  # stop strings; generation ends after one and the text keeps it
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"SamplingParams.max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, str]]
    prefix: str = ""  # partial assistant turn to continue from (not repeated in the completion text)


@dataclass(frozen=True)
class Completion:
    text: str  # generated text only (without the prompt or prefix)
    n_tokens: int  # generated tokens
    finish_reason: str  # "stop" (EOS or stop string) | "length" (max_new_tokens) | "skipped"
    skip_reason: str | None = None  # why a request was skipped (e.g. prompt longer than the context)


ProgressFn = Callable[[int, int], None]  # (completions_done_delta, tokens_delta)


@runtime_checkable
class Backend(Protocol):
    """What every generation backend offers."""

    name: str

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        progress: ProgressFn | None = None,
    ) -> list[list[Completion]]:
        """``params.n`` completions per request, in request order."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens of a text under the backend's tokenizer (used for length reports and budgets)."""
        ...


@dataclass
class BackendConfig:
    """How to build a backend; lives in recipes under ``backend:``."""

    name: str = "hf"  # hf | vllm | openai
    model: str = ""  # path (hf, vllm) or served model name (openai)
    options: dict = field(default_factory=dict)  # backend-specific: batch_size, dtype, tensor_parallel_size, base_url, ...
