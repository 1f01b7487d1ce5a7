"""Pretraining loop of the toy model: plain seeded torch, fp32, loss on assistant tokens only.

Why a hand-written loop rather than the HF Trainer: on 2 CPU cores every second counts, and this loop does
exactly three things - length-bucketed batches (little padding), AdamW with warmup + cosine decay, gradient
clipping - with no per-step overhead. It is deterministic given the seed and the thread count on one machine.

Each conversation is tokenized as the pipeline will see it: the prompt through the chat template with
``add_generation_prompt=True``, then the assistant text and the end-of-turn token tokenized on their own (as
generated tokens are), and only the latter carry loss (the end token included, so the model learns to stop).
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

from skillfactory.toy.presets import TrainConfig


def encode_conversations(tokenizer: Any, conversations: list[list[dict[str, str]]]) -> list[tuple[list[int], int]]:
    """(token ids, prompt length) per conversation; the tokens after the prompt carry the loss."""
    prompts = [tokenizer.apply_chat_template(m[:-1], tokenize=False, add_generation_prompt=True) for m in conversations]
    answers = [m[-1]["content"] + tokenizer.eos_token for m in conversations]
    backend = tokenizer.backend_tokenizer
    p_ids = [e.ids for e in backend.encode_batch(prompts, add_special_tokens=False)]
    a_ids = [e.ids for e in backend.encode_batch(answers, add_special_tokens=False)]
    return [(p + a, len(p)) for p, a in zip(p_ids, a_ids)]


def _batches(examples: list[tuple[list[int], int]], batch_size: int, epochs: float, seed: int,
             n_warmup: int = 0) -> list[list[int]]:
    """Index batches: shuffled, then sorted by length inside windows of 64 batches (little padding, still mixed).
    The first ``n_warmup`` examples (the curriculum's warm-up) are batched on their own and come first, once."""
    rng = random.Random(f"toy-batches/{seed}")
    n_total = int((len(examples) - n_warmup) * epochs)
    order: list[int] = []
    while len(order) < n_total:
        idx = list(range(n_warmup, len(examples)))
        rng.shuffle(idx)
        order += idx
    order = order[:n_total]
    window = batch_size * 64
    warm = list(range(n_warmup))
    rng.shuffle(warm)
    head = [warm[k:k + batch_size] for k in range(0, len(warm), batch_size)]
    batches = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(examples[i][0]))
        batches += [chunk[k:k + batch_size] for k in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return head + batches


def _collate(examples, idx, pad_id, all_tokens: bool = False):
    import torch

    width = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), width), -100, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for r, i in enumerate(idx):
        toks, n_prompt = examples[i]
        ids[r, :len(toks)] = torch.tensor(toks)
        first = 1 if all_tokens else n_prompt
        labels[r, first:len(toks)] = torch.tensor(toks[first:])
        mask[r, :len(toks)] = 1
    return ids, labels, mask


def pretrain(model: Any, examples: list[tuple[list[int], int]], cfg: TrainConfig, seed: int, pad_id: int,
             progress: Any = None, log: list | None = None, n_warmup: int = 0) -> dict[str, Any]:
    """Train ``model`` in place on encoded ``examples`` (the first ``n_warmup`` of them first, as a warm-up
    phase); returns figures (steps, tokens, loss, seconds)."""
    import torch

    # the thread count is process-wide: restore it, or every later stage of a pipeline run in this process
    # would compute with the build's count (different float rounding than a run that found the model cached)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _pretrain(model, examples, cfg, seed, pad_id, progress, log, n_warmup)
    finally:
        torch.set_num_threads(threads)


def _pretrain(model: Any, examples: list[tuple[list[int], int]], cfg: TrainConfig, seed: int, pad_id: int,
              progress: Any = None, log: list | None = None, n_warmup: int = 0) -> dict[str, Any]:
    """The loop itself, on the caller's torch threads."""
    import torch

    torch.manual_seed(seed)
    n_warmup = sum(1 for e in examples[:n_warmup] if len(e[0]) <= cfg.max_len)
    kept = [e for e in examples if len(e[0]) <= cfg.max_len]
    batches = _batches(kept, cfg.batch_size, cfg.epochs, seed, n_warmup)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    total = len(batches)
    warm = max(1, int(total * cfg.warmup))

    def lr_at(step: int) -> float:
        if step < warm:
            return cfg.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))

    model.train()
    start, tokens, ema = time.time(), 0, None
    for step, idx in enumerate(batches):
        ids, labels, mask = _collate(kept, idx, pad_id, cfg.loss_on == "all")
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens += int(mask.sum())
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if log is not None and (step % 20 == 0 or step == total - 1):
            log.append({"step": step, "loss": round(loss.item(), 4), "lr": lr_at(step), "tokens": tokens,
                        "seconds": round(time.time() - start, 1)})
        if progress is not None:
            progress(step + 1, total, ema)
    model.eval()
    seconds = time.time() - start
    return {"steps": total, "examples": len(kept), "dropped_too_long": len(examples) - len(kept),
            "tokens": tokens, "final_loss_ema": round(ema or float("nan"), 4), "seconds": round(seconds, 1),
            "tokens_per_s": round(tokens / max(seconds, 1e-9))}
