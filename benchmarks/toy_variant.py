"""Build a variant of a toy preset (JSON overrides) and print a quick `toy eval` (how the tiny preset was tuned).

    .venv/bin/python benchmarks/toy_variant.py OUT_DIR '{"corpus": {"n_conversations": 16000}, "train": {"lr": 1e-3}}'
    .venv/bin/python benchmarks/toy_variant.py OUT_DIR '{"preset": "tiny", "phrase_tokens": false}'

Overrides: top-level preset fields (``phrase_tokens``, ``merge_across_spaces``, ``vocab_size``) and the sections
``corpus``, ``train``, ``arch``; every value is validated by the preset's own pydantic models. The quick eval is
16 test questions x 8 samples per row and 128 reflections (the README's tuning table); ``--questions`` and
``--k`` change it. Nothing is cached: the model is built into OUT_DIR.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path


def variant(overrides: dict):
    from skillfactory.toy.presets import CorpusConfig, ToyPreset, TrainConfig, get_preset

    over = dict(overrides)
    base = get_preset(over.pop("preset", "tiny"))
    corpus = CorpusConfig(**{**base.corpus.model_dump(), **over.pop("corpus", {})})
    train = TrainConfig(**{**base.train.model_dump(), **over.pop("train", {})})
    arch = dataclasses.replace(base.arch, **over.pop("arch", {}))
    fields = {**base.model_dump(exclude={"arch", "corpus", "train"}), **over}
    return ToyPreset(**fields, arch=arch, corpus=corpus, train=train)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("overrides", nargs="?", default="{}")
    ap.add_argument("--questions", type=int, default=16)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from skillfactory.records import atomic_write_text
    from skillfactory.toy.build import BUILD_INFO, build_model_dir
    from skillfactory.toy.eval import ToyEvalConfig, evaluate_toy

    cfg = variant(json.loads(args.overrides))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    info = build_model_dir(cfg, args.seed, out, quiet=True)
    atomic_write_text(out / BUILD_INFO, json.dumps(info, indent=2) + "\n")
    print(f"build {time.time() - t0:.0f} s: {info['train']['tokens']} tokens, {info['train']['steps']} updates, "
          f"final loss {info['train']['final_loss_ema']}", flush=True)
    torch.set_num_threads(cfg.train.threads)
    r = evaluate_toy(ToyEvalConfig(model=str(out), questions=args.questions, k=args.k, reflections=128,
                                   countdown_params=dict(cfg.corpus.countdown_params), seed=args.seed))
    k = r["k"]
    for row in r["rows"]:
        print(f"{row['task']}-{row['size']}: pass@1 {row['pass@1']:.1%}, pass@{k} {row[f'pass@{k}']:.1%}")
    for key, s in r["reflection"].items():
        print(f"reflection {key}: agreement {s['agreement']:.1%}, invalid {s['invalid']:.1%}")
    (out / "variant_eval.json").write_text(json.dumps({"overrides": json.loads(args.overrides), "eval": r}, indent=2))


if __name__ == "__main__":
    main()
