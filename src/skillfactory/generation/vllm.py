"""The ``vllm`` backend: the same contract on vLLM's offline ``LLM`` engine, for fast sampling on GPUs.

vLLM is an optional extra (``pip install 'skillfactory[vllm]'``, GPU machines only: it pins its own torch and
transformers, see NOTES.md) and is imported only when this backend is built. It cannot be installed on the
CPU machines this project is developed on, so the tests here cover what runs without it: the clear error when
it is absent, and the request -> prompt/sampling-parameter building (``plan_requests``). The engine call itself
(``VLLMBackend.generate``) is untested in CI.

Same semantics as ``hf``: the prompt is the model's chat template plus the request's ``prefix``, passed as
token ids (so vLLM adds no second BOS); each completion is its own vLLM request with ``n=1`` and the seed
``common.completion_seed(seed, request, j)``, so completion *j* does not depend on what else is in flight
(vLLM's prefix cache makes the repeated prompts cheap); stop strings are kept in the text; a prompt longer
than the context minus ``max_new_tokens`` is returned as ``skipped``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillfactory.generation.base import Completion, GenerationRequest, ProgressFn, SamplingParams
from skillfactory.generation.common import completion_seed, render_prompt

INSTALL_HINT = "vLLM is not installed: pip install 'skillfactory[vllm]' on a GPU machine"


@dataclass(frozen=True)
class PlannedRow:
    """One vLLM request: completion ``index`` of request ``request``."""

    request: int
    index: int
    prompt_token_ids: list[int]
    sampling: dict[str, Any]  # keyword arguments of vllm.SamplingParams


def sampling_kwargs(params: SamplingParams, seed: int) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments for one completion (top_k -1 = off in vLLM; 0 is ours)."""
    return {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop) or None,
        "include_stop_str_in_output": True,  # our contract: the text keeps the stop string
        "skip_special_tokens": False,  # tag tokens such as <answer> may be special tokens
        "seed": seed,
    }


def plan_requests(tokenizer: Any, requests: Sequence[GenerationRequest], params: SamplingParams, max_context: int,
                  chat_template: str | None = None) -> tuple[list[PlannedRow], dict[int, str]]:
    """Rows to submit, and the requests to skip (index -> reason) because their prompt does not fit."""
    rows: list[PlannedRow] = []
    skipped: dict[int, str] = {}
    budget = max_context - params.max_new_tokens
    for i, req in enumerate(requests):
        ids = tokenizer(render_prompt(tokenizer, req, chat_template), add_special_tokens=False)["input_ids"]
        if len(ids) > budget:
            skipped[i] = (f"prompt has {len(ids)} tokens; the context of {max_context} minus "
                          f"max_new_tokens {params.max_new_tokens} leaves {max(budget, 0)}")
            continue
        for j in range(params.n):
            rows.append(PlannedRow(i, j, ids, sampling_kwargs(params, completion_seed(params.seed, req, j))))
    return rows, skipped


class VLLMBackend:
    """Generation with vLLM's offline engine (``get_backend("vllm", model=DIR, tensor_parallel_size=2)``).

    Options: ``tensor_parallel_size`` (GPUs per model replica), ``data_parallel_size`` (replicas; forwarded to
    the engine, needs a vLLM version with offline data parallelism), ``dtype`` ("auto" | "bfloat16" | ...),
    ``gpu_memory_utilization``, ``max_model_len``, ``chat_template``, ``engine_args`` (dict, any other
    ``vllm.LLM`` argument).
    """

    name = "vllm"

    def __init__(self, model: str, tensor_parallel_size: int = 1, data_parallel_size: int = 1, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 chat_template: str | None = None, seed: int = 0, engine_args: dict | None = None):
        from skillfactory.generation import BackendError

        try:
            import vllm
        except ImportError:
            raise BackendError(INSTALL_HINT) from None
        if not model or not os.path.isdir(model):
            raise BackendError(f"vllm backend: model directory {model!r} does not exist (give a path to a HF model folder)")
        from transformers import AutoConfig, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            config = AutoConfig.from_pretrained(model)
        except (OSError, ValueError, KeyError) as e:
            raise BackendError(f"vllm backend: cannot load {model}: {str(e).splitlines()[0]}") from None
        self.chat_template = chat_template
        self.max_context = max_model_len or int(getattr(config, "max_position_embeddings", 4096))
        kwargs: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                                  "gpu_memory_utilization": gpu_memory_utilization, "seed": seed,
                                  "max_model_len": self.max_context, **(engine_args or {})}
        if data_parallel_size > 1:
            kwargs["data_parallel_size"] = data_parallel_size
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams,
                 progress: ProgressFn | None = None) -> list[list[Completion]]:
        rows, skipped = plan_requests(self.tokenizer, requests, params, self.max_context, self.chat_template)
        out: list[list[Completion | None]] = [[None] * params.n for _ in requests]
        for i, reason in skipped.items():
            out[i] = [Completion("", 0, "skipped", reason) for _ in range(params.n)]
        if rows:
            results = self.llm.generate(
                [{"prompt_token_ids": r.prompt_token_ids} for r in rows],
                sampling_params=[self._vllm.SamplingParams(**r.sampling) for r in rows],
                use_tqdm=False,
            )
            for row, res in zip(rows, results):
                choice = res.outputs[0]
                reason = "length" if choice.finish_reason == "length" else "stop"
                out[row.request][row.index] = Completion(choice.text, len(choice.token_ids), reason)
        if progress:
            progress(len(requests) * params.n, sum(c.n_tokens for r in out for c in r if c is not None))
        return out  # type: ignore[return-value]
