"""Does GRPO raise the training reward in every arm? GRPO settings side by side on one finished SFT model.

    nice -n 10 .venv/bin/python benchmarks/grpo_reward.py --from runs/bench-sft-retention/replay+glue1
    nice -n 10 .venv/bin/python benchmarks/grpo_reward.py --from RUN --variant "lr1e-4:--set grpo.learning_rate=1e-4"

``--from``: an output folder of ``skillfactory run recipes/study.yaml`` (one seed) whose sft/skillfactory stage
is done (benchmarks/sft_retention.py makes one). Each variant copies that folder, runs only the GRPO stages of
the skillfactory and rl_only arms with the variant's overrides, and prints per arm the mean training reward over
the first and the last 20% of steps, the share of completions cut at max_completion_length (first/last 20%),
the KL to the reference model at the end, and the attempts per completion (first/last step). No test question is
touched: GRPO trains on the training split and this benchmark evaluates nothing.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_8X4 = "--set grpo.num_generations=4 --set grpo.global_batch_size=32 --set grpo.per_device_batch_size=32"
DEFAULT_VARIANTS = [
    f"preset-5e-4-8x4:--set grpo.learning_rate=5e-4 {_8X4}",  # the tiny preset's LR and batch
    f"lr1e-4-8x4:--set grpo.learning_rate=1e-4 {_8X4}",
    f"lr5e-4-8x4-mask:--set grpo.learning_rate=5e-4 {_8X4} --set grpo.mask_truncated_completions=true",
    "study-2e-4-8x8:",  # the study recipe as committed
]


def window_means(rows: list[dict], key: str, share: float = 0.2) -> tuple[float, float]:
    vals = [float(r.get(key) or 0.0) for r in rows]
    k = max(1, round(share * len(vals)))
    return sum(vals[:k]) / k, sum(vals[-k:]) / k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="source", required=True, help="a study run folder with sft/skillfactory done")
    ap.add_argument("--recipe", default="recipes/study.yaml")
    ap.add_argument("--variant", action="append", help="NAME:OVERRIDES (repeatable); default: three variants")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench-grpo-reward")
    args = ap.parse_args()
    source, out = Path(args.source), Path(args.out)
    if not (source / f"s{args.seed}" / "sft-skillfactory" / "final").exists() and not (source / "sft-skillfactory" / "final").exists():
        sys.exit(f"{source}: no finished sft-skillfactory stage; run benchmarks/sft_retention.py first")
    out.mkdir(parents=True, exist_ok=True)
    print(f"{'variant':14} {'arm':20} {'steps':>5} {'reward first':>12} {'last':>6} {'cut first':>9} {'last':>5} "
          f"{'KL end':>7} {'attempts':>9} {'seconds':>8}")
    for spec in args.variant or DEFAULT_VARIANTS:
        name, _, overrides = spec.partition(":")
        dest = out / name
        if not dest.exists():
            shutil.copytree(source, dest)
        cmd = [str(ROOT / ".venv/bin/skillfactory"), "run", args.recipe, "--set", f"seeds=[{args.seed}]",
               "--set", "arms=[skillfactory, rl_only]", "--set", f"out={dest}", "--only", "grpo", *shlex.split(overrides)]
        t0 = time.time()
        with open(out / f"{name}.log", "w") as log:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
        if rc != 0:
            sys.exit(f"variant {name}: `{shlex.join(cmd)}` failed (exit {rc}); see {out / name}.log")
        secs = time.time() - t0
        run = dest / f"s{args.seed}" if (dest / f"s{args.seed}").exists() else dest
        for arm in ("grpo-skillfactory", "grpo-rl_only"):
            rows = [json.loads(x) for x in (run / arm / "train_log.jsonl").read_text().splitlines()]
            rows = [r for r in rows if "reward_mean" in r]
            r0, r1 = window_means(rows, "reward_mean")
            c0, c1 = window_means(rows, "clipped_ratio")
            print(f"{name:14} {arm:20} {len(rows):5d} {r0:12.3f} {r1:6.3f} {c0:9.2f} {c1:5.2f} "
                  f"{float(rows[-1].get('kl') or 0):7.3f} {rows[0].get('attempts', 0):4.2f}->{rows[-1].get('attempts', 0):4.2f} "
                  f"{secs:8.0f}")


if __name__ == "__main__":
    main()
