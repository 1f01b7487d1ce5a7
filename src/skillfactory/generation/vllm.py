"""The ``vllm`` backend: the same contract on vLLM's offline ``LLM`` engine, for fast sampling on GPUs.

vLLM is an optional extra (``pip install 'skillfactory[vllm]'``, GPU machines only, in an environment of its own:
it pins its own torch and transformers) and is imported only when this backend is built. It cannot be installed on
the CPU machines this project is developed on, so the tests here cover what runs without it: the clear error when
it is absent, and the request -> prompt/sampling-parameter building (``plan_requests``). The engine call itself
(``VLLMBackend.generate``) is untested in CI.

Same semantics as ``hf``: the prompt is the model's chat template plus the request's ``prefix``, passed as
token ids (so vLLM adds no second BOS); each completion is its own vLLM request with ``n=1`` and the seed
``common.completion_seed(seed, request, j)``, so completion *j* does not depend on what else is in flight
(vLLM's prefix cache makes the repeated prompts cheap); stop strings are kept in the text; a prompt longer
than the context minus ``max_new_tokens`` is returned as ``skipped``.

Why the text is decoded here from ``token_ids`` (``completion_text``) and vLLM's own ``text`` is not used:
vLLM's detokenizer drops the final token only when the request stopped *and* ``include_stop_str_in_output``
is off, and an EOS ending counts as a stop; with the flags our contract needs (stop strings kept, special tag
tokens kept) every EOS-terminated ``text`` ends in ``<|im_end|>``, which the trace builder would copy into
its blocks, and SFT would learn to stop after the first attempt. Decoding the ids the way ``hf`` does (drop
the ending EOS / stop token, decode with special tokens, cut after the first stop string) makes the two
backends give the same text for the same tokens, whatever vLLM's detokenizer flags do.

Why one ``llm.generate`` call per ``generate``: vLLM schedules continuously, so handing it everything at once
keeps the GPU full; cutting the rows into chunks would make each chunk wait for its slowest completion.
``preferred_batch`` tells the resumable runner (``runner.run_units``) to give it chunks at least that big.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from skillfactory.generation.base import Completion, GenerationRequest, ProgressFn, SamplingParams
from skillfactory.generation.common import completion_seed, cut_at_stop, render_prompt, template_stop_ids

INSTALL_HINT = "vLLM is not installed: pip install 'skillfactory[vllm]' on a GPU machine"
DATA_PARALLEL_HINT = (
    "vllm backend: data_parallel_size={n} is not supported: vLLM's offline engine runs one replica per process, "
    "so data parallelism needs one engine per process: run N replicas with `--executor ray --replicas N` (recipe: "
    "launcher.executor), or several `vllm serve` servers behind the openai backend (backend_options.base_urls); "
    "to use N GPUs for one model, set tensor_parallel_size=N instead"
)


@dataclass(frozen=True)
class PlannedRow:
    """One vLLM request: completion ``index`` of request ``request``."""

    request: int
    index: int
    prompt_token_ids: list[int]
    sampling: dict[str, Any]  # keyword arguments of vllm.SamplingParams


def sampling_kwargs(params: SamplingParams, seed: int, stop_token_ids: Sequence[int] = ()) -> dict[str, Any]:
    """``vllm.SamplingParams`` arguments for one completion (top_k -1 = off in vLLM; 0 is ours).

    ``stop_token_ids``: the chat template's end-of-turn token, so a model whose generation config lists only its
    base EOS (``<|endoftext|>``) still stops at ``<|im_end|>``, as the ``hf`` backend does."""
    return {
        **({"stop_token_ids": list(stop_token_ids)} if stop_token_ids else {}),
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop) or None,
        # vLLM's own text is not used (completion_text decodes token_ids); these keep it close to ours when
        # someone reads vLLM's logs: the stop string kept, special tag tokens such as <answer> not skipped
        "include_stop_str_in_output": True,
        "skip_special_tokens": False,
        "seed": seed,
    }


def plan_requests(tokenizer: Any, requests: Sequence[GenerationRequest], params: SamplingParams, max_context: int,
                  chat_template: str | None = None, chat_template_kwargs: dict[str, Any] | None = None,
                  stop_token_ids: Sequence[int] = ()) -> tuple[list[PlannedRow], dict[int, str]]:
    """Rows to submit, and the requests to skip (index -> reason) because their prompt does not fit."""
    rows: list[PlannedRow] = []
    skipped: dict[int, str] = {}
    budget = max_context - params.max_new_tokens
    for i, req in enumerate(requests):
        text = render_prompt(tokenizer, req, chat_template, chat_template_kwargs)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > budget:
            skipped[i] = (f"prompt has {len(ids)} tokens; the context of {max_context} minus "
                          f"max_new_tokens {params.max_new_tokens} leaves {max(budget, 0)}")
            continue
        for j in range(params.n):
            seed = completion_seed(params.seed, req, j)
            rows.append(PlannedRow(i, j, ids, sampling_kwargs(params, seed, stop_token_ids)))
    return rows, skipped


def completion_text(tokenizer: Any, output: Any, stop: Sequence[str]) -> tuple[str, str]:
    """(text, finish reason) of one ``vllm.CompletionOutput``, decoded from its ``token_ids`` like ``hf`` does.

    ``finish_reason == "stop"`` with ``stop_reason`` None (EOS) or an int (a stop token id) means the last id
    is that token: it is dropped, as ``hf`` cuts at EOS. A str ``stop_reason`` is our stop string: the text
    keeps it and is cut right after it (its last token may run past it). Anything else ("length", "abort")
    is a truncated completion, decoded whole. Example: the ids of ``"<answer>22</answer>"`` plus ``<|im_end|>``,
    ``finish_reason="stop"``, ``stop_reason=None`` give ``("<answer>22</answer>", "stop")``.
    """
    ids = list(output.token_ids)
    stopped = output.finish_reason == "stop"
    if stopped and not isinstance(output.stop_reason, str) and ids:
        ids = ids[:-1]
    text = tokenizer.decode(ids, skip_special_tokens=False)
    if stop:
        text, found = cut_at_stop(text, stop)
        stopped = stopped or found
    return text, "stop" if stopped else "length"


class VLLMBackend:
    """Generation with vLLM's offline engine (``get_backend("vllm", model=DIR, tensor_parallel_size=2)``).

    Options: ``tensor_parallel_size`` (GPUs for the one model replica), ``dtype`` ("auto" | "bfloat16" | ...),
    ``gpu_memory_utilization``, ``max_model_len``, ``chat_template``, ``engine_args`` (dict, any other
    ``vllm.LLM`` argument). ``data_parallel_size`` > 1 is refused with a hint (``DATA_PARALLEL_HINT``): vLLM's
    offline engine cannot run several replicas in one process.
    """

    name = "vllm"
    preferred_batch = 8192  # completions per generate call: enough to keep continuous batching busy

    def __init__(self, model: str, tensor_parallel_size: int = 1, data_parallel_size: int = 1, dtype: str = "auto",
                 gpu_memory_utilization: float = 0.9, max_model_len: int | None = None,
                 chat_template: str | None = None, seed: int = 0, engine_args: dict | None = None,
                 chat_template_kwargs: dict | None = None):
        from skillfactory.generation import BackendError

        for n in (data_parallel_size, (engine_args or {}).get("data_parallel_size", 1)):
            if n != 1:
                raise BackendError(DATA_PARALLEL_HINT.format(n=n))
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
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.stop_token_ids = template_stop_ids(self.tokenizer, self.chat_template_kwargs, chat_template)
        self.max_context = max_model_len or int(getattr(config, "max_position_embeddings", 4096))
        kwargs: dict[str, Any] = {"model": model, "tensor_parallel_size": tensor_parallel_size, "dtype": dtype,
                                  "gpu_memory_utilization": gpu_memory_utilization, "seed": seed,
                                  "max_model_len": self.max_context, **(engine_args or {})}
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams,
                 progress: ProgressFn | None = None) -> list[list[Completion]]:
        rows, skipped = plan_requests(self.tokenizer, requests, params, self.max_context, self.chat_template,
                                      self.chat_template_kwargs, self.stop_token_ids)
        out: list[list[Completion | None]] = [[None] * params.n for _ in requests]
        for i, reason in skipped.items():
            out[i] = [Completion("", 0, "skipped", reason) for _ in range(params.n)]
        if rows:  # one call for every row: vLLM schedules them continuously (see the module docstring)
            results = self.llm.generate(
                [{"prompt_token_ids": r.prompt_token_ids} for r in rows],
                sampling_params=[self._vllm.SamplingParams(**r.sampling) for r in rows],
                use_tqdm=False,
            )
            for row, res in zip(rows, results):
                choice = res.outputs[0]
                text, reason = completion_text(self.tokenizer, choice, params.stop)
                out[row.request][row.index] = Completion(text, len(choice.token_ids), reason)
        if progress:
            progress(len(requests) * params.n, sum(c.n_tokens for r in out for c in r if c is not None))
        return out  # type: ignore[return-value]
