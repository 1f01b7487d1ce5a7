"""Generation backends, chosen by name; heavy ones (vLLM) are imported only when chosen.

    >>> backend = get_backend("hf", model="path/to/model")
    >>> backend.generate([GenerationRequest([{"role": "user", "content": "hi"}])], SamplingParams(n=2))
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any

from skillfactory.errors import SkillFactoryError
from skillfactory.generation.base import Backend, BackendConfig, Completion, GenerationRequest, SamplingParams

#: name -> "module:factory". Factories take (model: str, **options).
BACKENDS: dict[str, str] = {
    "hf": "skillfactory.generation.hf:HFBackend",
    "vllm": "skillfactory.generation.vllm:VLLMBackend",
    "openai": "skillfactory.generation.openai:OpenAIBackend",
}


class BackendError(SkillFactoryError, RuntimeError):
    """A backend that cannot be built (unknown name, missing model, missing optional dependency)."""


def get_backend(name: str, model: str, **options: Any) -> Backend:
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, BACKENDS, n=2)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise BackendError(f"unknown backend {name!r}{hint} (backends: {', '.join(BACKENDS)})")
    module, _, attr = BACKENDS[name].partition(":")
    factory = getattr(importlib.import_module(module), attr)
    return factory(model, **options)


__all__ = ["BACKENDS", "Backend", "BackendConfig", "BackendError", "Completion", "GenerationRequest",
           "SamplingParams", "get_backend"]
