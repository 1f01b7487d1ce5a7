"""Kill a recipe run at a random moment, run it again, and compare it with an uninterrupted run.

    skillfactory run recipes/quickstart.yaml                                   # the reference (runs/quickstart)
    python benchmarks/kill_resume.py recipes/quickstart.yaml --reference runs/quickstart --out runs/qs-killed

The run into ``--out`` gets SIGKILL (its whole process group, as a crash or a closed laptop would) after a number
of seconds drawn uniformly from ``--window`` (or ``--kill-at``), then the same command runs to the end. Compared
with the reference: every eval's score tables, the samples/reflections/traces files byte for byte, and each
training log step for step (timing fields aside). Prints one line per check and the number of differences.
Use the same ``SKILLFACTORY_CACHE`` for both runs so the base model is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

SAME_BYTES = ("sample/samples.jsonl", "reflect/reflections.jsonl", "traces-skillfactory/traces.jsonl")


def run(recipe: str, out: Path, log, kill_at: float | None) -> int | None:
    """Exit code, or None when killed."""
    cmd = [sys.executable, "-m", "skillfactory", "run", recipe, "--set", f"out={out}"]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        proc.wait(kill_at)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"killed after {kill_at:.0f} s", flush=True)
        return None
    print(f"finished (exit {proc.returncode}) in {time.time() - t0:.0f} s", flush=True)
    return proc.returncode


def _train_log(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.open()]
    return [{k: v for k, v in r.items() if "time" not in k and "per_second" not in k} for r in rows]


def compare(ref: Path, got: Path) -> int:
    bad = 0
    for seed_dir in sorted(ref.glob("s*")):
        other = got / seed_dir.name
        for res in sorted(seed_dir.glob("eval-*/results.json")):
            a, b = json.loads(res.read_text()), json.loads((other / res.parent.name / "results.json").read_text())
            same = a["entries"] == b["entries"] and a["budget_forcing"] == b["budget_forcing"]
            bad += not same
            print(f"{seed_dir.name}/{res.parent.name}: scores {'equal' if same else 'DIFFERENT'}")
        for rel in SAME_BYTES:
            if (seed_dir / rel).exists():
                same = (seed_dir / rel).read_bytes() == (other / rel).read_bytes()
                bad += not same
                print(f"{seed_dir.name}/{rel}: {'same bytes' if same else 'DIFFERENT'}")
        for log in sorted(seed_dir.glob("*/train_log.jsonl")):
            a, b = _train_log(log), _train_log(other / log.parent.name / "train_log.jsonl")
            bad += a != b
            print(f"{seed_dir.name}/{log.parent.name}: train log {'equal' if a == b else 'DIFFERENT'} ({len(a)} vs {len(b)} rows)")
    return bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("recipe")
    ap.add_argument("--reference", type=Path, required=True, help="output folder of an uninterrupted run")
    ap.add_argument("--out", type=Path, required=True, help="output folder of the run to kill (should not exist)")
    ap.add_argument("--window", type=float, nargs=2, default=(20, 650), help="kill time is drawn from this range")
    ap.add_argument("--kill-at", type=float, default=None, help="seconds (overrides --window)")
    args = ap.parse_args()
    kill_at = args.kill_at if args.kill_at is not None else random.uniform(*args.window)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{args.out}.log", "a") as log:
        if run(args.recipe, args.out, log, kill_at) is None:
            for stage in sorted(args.out.glob("s*/*")):
                state = "done" if (stage / ".stage-done.json").exists() else (
                    "interrupted" if (stage / ".stage-pending.json").exists() else "-")
                print(f"  {stage.parent.name}/{stage.name}: {state}")
        if run(args.recipe, args.out, log, None) != 0:
            sys.exit(f"the re-run failed; see {args.out}.log")
    print(f"differences: {compare(args.reference, args.out)}")


if __name__ == "__main__":
    main()
