"""The ``hf`` backend: batched ``transformers`` generation on CPU or CUDA.

Why it is built this way:
- **Throughput.** On a CPU a tiny model samples ~5k tokens/s with 128 sequences in flight and ~1.4k with 8, so
  requests are flattened into rows (one per completion), sorted by prompt length (length bucketing: little
  padding), batched ``batch_size`` rows at a time with LEFT padding and the KV cache, then put back in order.
- **Determinism per work unit.** Sampling does not use torch's global RNG. Each row gets its own seed
  (``common.completion_seed``: call seed + request + completion index) and draws each token by inverse-CDF
  sampling with a uniform number from a counter-based hash of (row seed, step). The same request with the
  same seed therefore gives the same text whatever else shares its batch, and a resumed stage reproduces an
  uninterrupted one. The hash is integer arithmetic, so the random numbers are the same on CPU and CUDA.
- **No silent defaults.** transformers falls back to ``top_k=50`` and to the model's own generation config
  (Qwen ships ``repetition_penalty=1.05``); here temperature/top_p/top_k are exactly ``SamplingParams`` and
  everything else is off. ``temperature=0`` is greedy.
- fp32 on CPU (bf16 is 15-25x slower there), bf16 on CUDA.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from skillfactory.generation.base import Completion, GenerationRequest, ProgressFn, SamplingParams
from skillfactory.generation.common import completion_seed, cut_at_stop, render_prompt, template_stop_ids

log = logging.getLogger(__name__)

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # splitmix64 constants as signed int64
_MUL1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MUL2 = 0x94D049BB133111EB - (1 << 64)


def _mix64(z):
    """splitmix64 finaliser on an int64 tensor (wrapping multiply, logical shifts)."""
    import torch

    def shr(x, k):
        return torch.bitwise_and(torch.bitwise_right_shift(x, k), (1 << (64 - k)) - 1)

    z = torch.bitwise_xor(z, shr(z, 30)) * _MUL1
    z = torch.bitwise_xor(z, shr(z, 27)) * _MUL2
    return torch.bitwise_xor(z, shr(z, 31))


def row_uniform(row_seeds, step: int):
    """One uniform number in (0, 1) per row (float64), a pure function of (row seed, step)."""
    import torch

    offset = torch.full_like(row_seeds, step + 1) * _GOLDEN  # wraps in int64, like splitmix64 in uint64
    z = _mix64(row_seeds + offset)
    return (torch.bitwise_right_shift(z, 11).bitwise_and((1 << 53) - 1).double() + 0.5) / float(1 << 53)


class _SeededSampler:
    """Logits processor that *samples*: inverse-CDF sampling with one seeded uniform per row and step.

    It returns scores that are 0 at the drawn token and -inf elsewhere, so transformers' greedy step picks it.
    One hashed number per row (not per vocabulary entry) keeps this cheap with a 150k vocabulary on a CPU.
    """

    def __init__(self, row_seeds, prompt_len: int):
        self.row_seeds = row_seeds
        self.prompt_len = prompt_len

    def __call__(self, input_ids, scores):
        import torch

        probs = torch.softmax(scores.double(), dim=-1)
        cdf = probs.cumsum(dim=-1)
        u = row_uniform(self.row_seeds, input_ids.shape[1] - self.prompt_len) * cdf[:, -1]
        idx = torch.searchsorted(cdf, u[:, None], right=True).clamp(max=scores.shape[-1] - 1)
        idx = torch.where(probs.gather(1, idx) > 0, idx, probs.argmax(dim=-1, keepdim=True))  # rounding at the end
        return torch.full_like(scores, float("-inf")).scatter_(1, idx, 0.0)


class _StopOnStrings:
    """Stopping criterion: a row is done once a stop string appears in its *generated* text.

    transformers' own ``stop_strings`` also matches across the prompt boundary (a prompt ending in "\n" and
    a stop string "\n\n" stop after one newline), so generated tokens are checked here, in a window of the
    last ``longest stop + 8`` tokens (every token decodes to at least one character).
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_len: int):
        self.tokenizer, self.stop, self.prompt_len = tokenizer, tuple(stop), prompt_len
        self.window = max(len(x) for x in stop) + 8

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        tails = input_ids[:, max(self.prompt_len, input_ids.shape[1] - self.window):].tolist()
        texts = self.tokenizer.batch_decode(tails, skip_special_tokens=False)
        return torch.tensor([any(x in t for x in self.stop) for t in texts], dtype=torch.bool, device=input_ids.device)


class HFBackend:
    """Generation with ``transformers`` (``get_backend("hf", model=DIR, batch_size=64)``).

    Options: ``batch_size`` (sequences in flight; 64 on CPU, 256 on CUDA), ``device`` ("auto" | "cpu" |
    "cuda" | "cuda:1"), ``dtype`` ("auto" = fp32 on CPU, bf16 on CUDA | "float32" | "bfloat16" | "float16"),
    ``chat_template`` (a Jinja template for models without one), ``chat_template_kwargs`` (template arguments
    such as ``enable_thinking``; the recipe sets them once for every stage).
    """

    name = "hf"

    def __init__(self, model: str, batch_size: int | None = None, device: str = "auto", dtype: str = "auto",
                 chat_template: str | None = None, chat_template_kwargs: dict | None = None):
        from skillfactory.generation import BackendError

        import torch

        if not model or not os.path.isdir(model):
            raise BackendError(f"hf backend: model directory {model!r} does not exist (give a path to a HF model folder)")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
        if dtype == "auto":
            torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        elif dtype in dtypes:
            torch_dtype = dtypes[dtype]
        else:
            raise BackendError(f"hf backend: option dtype={dtype!r}; expected auto, {', '.join(dtypes)}")
        if batch_size is not None and batch_size < 1:
            raise BackendError(f"hf backend: option batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size or (256 if device.startswith("cuda") else 64)
        self.device = device
        self.chat_template = chat_template
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.tokenizer, self.model = _load(model, torch_dtype, device)
        if not (self.tokenizer.chat_template or chat_template):
            raise BackendError(f"hf backend: {model} has no chat template; pass backend option chat_template=...")
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self.eos_ids += [i for i in template_stop_ids(self.tokenizer, self.chat_template_kwargs, chat_template)
                         if i not in self.eos_ids]
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        self.max_context = _max_context(self.model, self.tokenizer)

    # ---- protocol ---------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        text = render_prompt(self.tokenizer, request, self.chat_template, self.chat_template_kwargs)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams,
                 progress: ProgressFn | None = None) -> list[list[Completion]]:
        out: list[list[Completion | None]] = [[None] * params.n for _ in requests]
        budget = self.max_context - params.max_new_tokens
        greedy = params.temperature == 0
        rows: list[tuple[int, int, list[int], int]] = []  # (request, completion index, prompt ids, seed)
        for i, req in enumerate(requests):
            ids = self.prompt_ids(req)
            if len(ids) > budget:
                reason = (f"prompt has {len(ids)} tokens; the context of {self.max_context} minus "
                          f"max_new_tokens {params.max_new_tokens} leaves {max(budget, 0)}")
                out[i] = [Completion("", 0, "skipped", reason) for _ in range(params.n)]
                if progress:
                    progress(params.n, 0)
                continue
            for j in range(1 if greedy else params.n):  # greedy completions are all the same: make one
                rows.append((i, j, ids, completion_seed(params.seed, req, j)))
        rows.sort(key=lambda r: -len(r[2]))  # longest first: an out-of-memory shows up in the first batch
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start:start + self.batch_size]
            done = self._generate_batch(batch, params)
            for (i, j, _, _), comp in zip(batch, done):
                targets = range(params.n) if greedy else [j]
                for t in targets:
                    out[i][t] = comp
            if progress:
                progress(len(batch) * (params.n if greedy else 1), sum(c.n_tokens for c in done))
        return out  # type: ignore[return-value]

    # ---- internals --------------------------------------------------------------------------------------------
    def _generate_batch(self, batch, params: SamplingParams) -> list[Completion]:
        import torch
        from transformers import (GenerationConfig, LogitsProcessorList, StoppingCriteriaList,
                                  TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)

        width = max(len(r[2]) for r in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for k, (_, _, ids, _) in enumerate(batch):
            input_ids[k, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[k, width - len(ids):] = 1
        input_ids, mask = input_ids.to(self.model.device), mask.to(self.model.device)
        processors = LogitsProcessorList()
        if params.temperature > 0:
            if params.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                processors.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                processors.append(TopPLogitsWarper(params.top_p))
            seeds = torch.tensor([r[3] for r in batch], dtype=torch.int64, device=self.model.device)
            processors.append(_SeededSampler(seeds, width))
        config = GenerationConfig(
            do_sample=False, num_beams=1, max_new_tokens=params.max_new_tokens, min_new_tokens=0,
            eos_token_id=self.eos_ids, pad_token_id=self.pad_id, repetition_penalty=1.0, no_repeat_ngram_size=0,
            temperature=1.0, top_p=1.0, top_k=50, use_cache=True,
        )
        criteria = StoppingCriteriaList([_StopOnStrings(self.tokenizer, params.stop, width)] if params.stop else [])
        with torch.inference_mode():
            seqs = self.model.generate(
                input_ids=input_ids, attention_mask=mask, generation_config=config, logits_processor=processors,
                stopping_criteria=criteria,
            )
        return [self._finish(row, params) for row in seqs[:, width:].tolist()]

    def _finish(self, tokens: list[int], params: SamplingParams) -> Completion:
        eos = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
        if eos is not None:
            tokens, n_tokens, reason = tokens[:eos], eos + 1, "stop"
        else:
            n_tokens, reason = len(tokens), "length"
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        if params.stop:
            text, stopped = cut_at_stop(text, params.stop)
            if stopped:
                reason = "stop"
                n_tokens = min(n_tokens, self.count_tokens(text))
        return Completion(text=text, n_tokens=n_tokens, finish_reason=reason)


def _load(model: str, torch_dtype: Any, device: str):
    """Tokenizer + causal LM, or a one-line BackendError saying what the folder is missing."""
    from skillfactory.console import no_weight_loading_bar
    from skillfactory.generation import BackendError

    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendError(f"hf backend: cannot load a tokenizer from {model}: {str(e).splitlines()[0]}") from None
    try:
        with no_weight_loading_bar():
            lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BackendError(f"hf backend: {model} is not a causal language model: {str(e).splitlines()[0]}") from None
    tokenizer.padding_side = "left"
    return tokenizer, lm.to(device).eval()


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids: list[int] = []
    for src in (model.generation_config.eos_token_id, tokenizer.eos_token_id):
        for t in src if isinstance(src, (list, tuple)) else [src]:
            if t is not None and t not in ids:
                ids.append(int(t))
    if not ids:
        from skillfactory.generation import BackendError

        raise BackendError("hf backend: the model and tokenizer define no end-of-sequence token")
    return ids


def _max_context(model: Any, tokenizer: Any) -> int:
    n = getattr(model.config, "max_position_embeddings", None)
    if n is None:
        n = tokenizer.model_max_length if tokenizer.model_max_length < 10**7 else 4096
        log.warning("model config has no max_position_embeddings; assuming a context of %d tokens", n)
    return int(n)
