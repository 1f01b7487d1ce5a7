"""Does the tiny architecture learn to copy a question's numbers, and at which learning rate? (README, "The tiny model")

    .venv/bin/python benchmarks/toy_copy_lr.py --lr 3e-3 5e-4      # one run per learning rate, ~80 s each on 1 core

Trains the tiny preset's architecture from scratch on copy drills alone (``corpus.copy_conversation``: a countdown
question's first sentence -> "It uses 6, 5 and 3.\\nThe target is 14.") for 600 updates of batch 16, then prints
the share of 64 held-out drills it restates exactly (greedy). This is the check that found the old preset's
learning rate (3e-3) too high for copying.
"""

from __future__ import annotations

import argparse
import random


def copy_accuracy(lr: float, steps: int = 600, batch_size: int = 16, seed: int = 0) -> tuple[float, float]:
    import torch

    from skillfactory.toy.corpus import build_corpus, copy_conversation, tokenizer_texts
    from skillfactory.toy.model import build_model
    from skillfactory.toy.presets import TrainConfig, get_preset
    from skillfactory.toy.pretrain import encode_conversations, pretrain
    from skillfactory.toy.tokenizer import save_tokenizer, train_tokenizer

    import tempfile

    cfg = get_preset("tiny")
    convs = [copy_conversation(cfg.corpus, "countdown", random.Random(i)) for i in range(steps * batch_size)]
    test = [copy_conversation(cfg.corpus, "countdown", random.Random(10**6 + i)) for i in range(64)]
    base, _ = build_corpus(cfg.corpus, seed, n=300)
    tok = train_tokenizer(tokenizer_texts(base + convs[:500]), cfg.vocab_size)
    with tempfile.TemporaryDirectory() as tmp:
        fast = save_tokenizer(tok, tmp, cfg.arch.max_position_embeddings)
    model = build_model(cfg.arch, len(fast), fast.pad_token_id, fast.bos_token_id, fast.eos_token_id, seed=seed)
    train = TrainConfig(batch_size=batch_size, lr=lr, threads=1, loss_on="assistant", warmup=0.03)
    figures = pretrain(model, encode_conversations(fast, [c.messages for c in convs]), train, seed, fast.pad_token_id)
    right = 0
    for c in test:
        ids = fast.apply_chat_template(c.messages[:-1], add_generation_prompt=True, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=30, do_sample=False, pad_token_id=fast.pad_token_id,
                                 eos_token_id=fast.eos_token_id)
        text = fast.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        right += text.strip() == c.messages[-1]["content"].strip()
    return right / len(test), figures["final_loss_ema"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lr", type=float, nargs="+", default=[3e-3, 1e-3, 5e-4])
    ap.add_argument("--steps", type=int, default=600)
    args = ap.parse_args()
    for lr in args.lr:
        acc, loss = copy_accuracy(lr, args.steps)
        print(f"lr {lr:g}: {acc:.0%} of 64 held-out number lists copied exactly after {args.steps} updates "
              f"of batch 16 (final loss {loss})", flush=True)


if __name__ == "__main__":
    main()
