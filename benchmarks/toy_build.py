"""Build a toy preset from scratch (temp cache) and print its build time and its `toy eval` table.

    .venv/bin/python benchmarks/toy_build.py --preset tiny [--seed 0] [--questions 32]

The figures in the README come from this script (timings drift 1.5-2x with machine load).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--questions", type=int, default=32)
    ap.add_argument("--out", default=None, help="save the eval JSON here")
    args = ap.parse_args()

    from rich.console import Console

    from skillfactory.toy.build import BUILD_INFO, build_toy_model
    from skillfactory.toy.eval import ToyEvalConfig, evaluate_toy, render_table

    with tempfile.TemporaryDirectory() as cache:
        os.environ["SKILLFACTORY_CACHE"] = cache
        t0 = time.time()
        path = build_toy_model(args.preset, seed=args.seed)
        build_s = time.time() - t0
        info = json.loads((path / BUILD_INFO).read_text())
        print(f"build: {build_s:.0f} s wall ({info['seconds']}), {info['parameters'] / 1e6:.2f}M parameters, "
              f"{info['train']['tokens']} tokens at {info['train']['tokens_per_s']} tok/s")
        result = evaluate_toy(ToyEvalConfig(model=str(path), questions=args.questions, seed=args.seed))
        render_table(result, Console())
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"build_seconds": build_s, "build": info, "eval": result}, f, indent=2)


if __name__ == "__main__":
    main()
