"""Pieces every backend shares, so hf, vllm and openai agree on what a request means.

- ``render_prompt``: the model's own chat template with the generation prompt, then the request's ``prefix``
  (a partial assistant turn to continue). Rendered as text and tokenized without extra special tokens, because
  the template already holds them (a second BOS would shift a real model off its training distribution).
- ``completion_seed``: the seed of completion *j* of a request depends only on (params.seed, the request, j).
  A completion is then a function of its own work unit, not of what else is in the batch or what ran before,
  which is what makes a resumed stage write the same text as an uninterrupted one.
- ``cut_at_stop``: stop strings end a completion *after* the stop string (the text keeps it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from skillfactory.generation.base import GenerationRequest

SEED_BITS = 62  # fits a signed int64 (torch) and vLLM/OpenAI integer seeds


def completion_seed(seed: int, request: GenerationRequest, index: int) -> int:
    """A 62-bit seed for completion ``index`` of ``request`` under the call's ``seed``."""
    blob = json.dumps([seed, request.messages, request.prefix, index], ensure_ascii=False, sort_keys=True)
    return int.from_bytes(hashlib.sha256(blob.encode()).digest()[:8], "big") >> (64 - SEED_BITS)


def render_prompt(tokenizer: Any, request: GenerationRequest, chat_template: str | None = None,
                  chat_template_kwargs: dict[str, Any] | None = None) -> str:
    """Chat template of the model (``add_generation_prompt=True``, with the recipe's template arguments such as
    ``enable_thinking``) followed by the request's prefix. SFT builds its prompts the same way (``chat.py``)."""
    from skillfactory.chat import generation_prompt

    return generation_prompt(tokenizer, request.messages, chat_template_kwargs, chat_template) + request.prefix


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` right after the earliest stop string; returns (text, whether a stop string was found)."""
    best = -1
    for s in stop:
        i = text.find(s)
        if i != -1 and (best == -1 or i + len(s) < best):
            best = i + len(s)
    return (text[:best], True) if best != -1 else (text, False)


def template_stop_ids(tokenizer: Any, chat_template_kwargs: dict[str, Any] | None = None,
                      chat_template: str | None = None) -> list[int]:
    """The chat template's end-of-turn token id (``<|im_end|>``, ``<|eot_id|>`` ...), or [] when it has none.

    Generation must stop there even when the model's generation config names only its base EOS: otherwise a
    completion runs on into a new turn. SFT trains exactly this token as the end of the answer (``chat.py``).
    """
    from skillfactory.chat import ChatTemplateError, end_of_turn

    try:
        return [end_of_turn(tokenizer, chat_template_kwargs, chat_template).token_id]
    except ChatTemplateError:
        return []
