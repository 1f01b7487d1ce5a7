"""Seconds per GRPO step and the reward curve on the toy model, on CPU (TRL GRPOTrainer, HF generation).

    nice -n 10 .venv/bin/python benchmarks/grpo_cpu.py --steps 20            # tiny toy model (micro if not built)
    nice -n 10 .venv/bin/python benchmarks/grpo_cpu.py --preset micro --steps 5

Uses the toy presets' countdown range (numbers 1-20, + and -, 3 numbers), where the tiny model is partly right,
so GRPO groups have reward variance. Prints one line per step (reward mean, completion length, step seconds)
and a summary line. The first step includes warm-up (model load is excluded).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny", help="toy model preset (tiny, micro)")
    ap.add_argument("--build", action="store_true", help="build the preset if not cached (else fall back to micro)")
    ap.add_argument("--model", default=None, help="model folder instead of the toy model")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--prompts", type=int, default=8, help="prompts per step")
    ap.add_argument("--generations", type=int, default=4, help="rollouts per prompt")
    ap.add_argument("--max-completion-length", type=int, default=128)
    ap.add_argument("--lr", type=float, default=None, help="default: the GRPO 'tiny' preset")
    ap.add_argument("--num-args", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    from skillfactory.toy.build import build_toy_model, cached_path, is_built
    from skillfactory.training.grpo import GRPORunConfig, run_grpo

    if args.model:
        model = args.model
    else:
        t0 = time.time()
        if not args.build and not is_built(cached_path(args.preset, 0)) and args.preset != "micro":
            print(f"toy model {args.preset!r} is not built yet (pass --build to build it); using 'micro'")
            args.preset = "micro"
        model = str(build_toy_model(args.preset, seed=0, quiet=True))
        print(f"toy model {args.preset}: {model} ({time.time() - t0:.0f} s to build or load)")
    out = args.out or tempfile.mkdtemp(prefix="grpo_cpu_")
    cfg = GRPORunConfig(
        model=model, out=out, preset="tiny", task="countdown",
        params={"num_args": args.num_args, "min_number": 1, "max_number": 20, "operators": "+-"},
        n_questions=args.prompts * args.steps, max_steps=args.steps, num_generations=args.generations,
        per_device_batch_size=args.prompts * args.generations, max_completion_length=args.max_completion_length,
        save_steps=10**6, resume=False, **({"learning_rate": args.lr} if args.lr else {}),
    )
    summary = run_grpo(cfg)
    wall = summary["seconds"]  # trainer.train only (model load and trainer set-up excluded)
    rows = [json.loads(x) for x in (Path(out) / "train_log.jsonl").read_text().splitlines()]
    print(f"{'step':>4} {'reward':>7} {'len':>6} {'clipped':>7} {'attempts':>8} {'s/step':>7}")
    for r in rows:
        print(f"{r['step']:>4} {r['reward_mean']:>7.3f} {r['completion_length']:>6.1f} {r['clipped_ratio']:>7.2f} "
              f"{r['attempts']:>8.2f} {r.get('step_time', float('nan')):>7.2f}")
    times = [r["step_time"] for r in rows if r.get("step_time") is not None]
    half = max(1, len(rows) // 2)
    first = sum(r["reward_mean"] for r in rows[:half]) / half
    last = sum(r["reward_mean"] for r in rows[-half:]) / half
    print(f"grpo_cpu: {len(rows)} steps x {args.prompts} prompts x {args.generations} rollouts, "
          f"{wall / max(1, len(rows)):.2f} s/step wall (trainer step_time median "
          f"{sorted(times)[len(times) // 2] if times else float('nan'):.2f} s), reward first half {first:.3f} -> "
          f"last half {last:.3f}, model {summary['final_model']}")


if __name__ == "__main__":
    main()
