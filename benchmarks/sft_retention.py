"""Does SFT on silver traces keep what the base model could do? sft_only vs base on the VALIDATION split.

    nice -n 10 .venv/bin/python benchmarks/sft_retention.py                       # the study recipe, 3 variants
    nice -n 10 .venv/bin/python benchmarks/sft_retention.py --variant "ep5:--set sft.epochs=5"

For each variant (a name and ``skillfactory run`` overrides) it runs ``recipes/study.yaml`` with one seed, arms
``[sft_only]`` and ``eval.split=validation`` (questions disjoint from the test split: settings are chosen here,
never on test results), then prints per suite entry the base and sft_only accuracy, the share of the base
accuracy kept, and sft_only's answers in the trace structure (``well_formed``: every <sample> closed, a final
<answer>) and glue lines verbatim from the pools (over well-formed answers, and over all). The issue's bar:
keep >= half the base accuracy on countdown-2, countdown-4 and multiplication-2, >= 90% well formed, >= 95%
glue verbatim. Each variant has its own output folder under --out (re-runs reuse finished stages).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = [
    "no_replay:--set replay=null --set traces.glue_pool_size=null",
    "replay:--set traces.glue_pool_size=null --set replay.traces.glue_pool_size=null",
    "replay+glue1:",  # the study recipe as committed
]
KEPT = ("countdown-2", "countdown-4", "multiplication-2")


def glue_over_well_formed(samples: Path) -> dict[str, tuple[int, int]]:
    from skillfactory.evaluation.skills import structure_of

    out: dict[str, list[int]] = {}
    for line in samples.read_text().splitlines():
        s = json.loads(line)
        wf, glue, verbatim = structure_of(s["text"])
        if wf:
            acc = out.setdefault(s["entry"], [0, 0])
            acc[0] += verbatim
            acc[1] += glue
    return {k: (v[0], v[1]) for k, v in out.items()}


def run_variant(name: str, overrides: str, recipe: str, out: Path, seed: int) -> float:
    cmd = [str(ROOT / ".venv/bin/skillfactory"), "run", recipe, "--set", f"seeds=[{seed}]", "--set", "arms=[sft_only]",
           "--set", "eval.split=validation", "--set", "eval.budget_forcing.enabled=false",
           "--set", f"out={out / name}", *shlex.split(overrides)]
    t0 = time.time()
    with open(out / f"{name}.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if rc != 0:
        sys.exit(f"variant {name}: `{shlex.join(cmd)}` failed (exit {rc}); see {out / name}.log")
    return time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="recipes/study.yaml")
    ap.add_argument("--variant", action="append", help="NAME:OVERRIDES (repeatable); default: three variants")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="runs/bench-sft-retention")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.variant or DEFAULT_VARIANTS:
        name, _, overrides = spec.partition(":")
        secs = run_variant(name, overrides, args.recipe, out, args.seed)
        run = out / name / f"s{args.seed}" if (out / name / f"s{args.seed}").exists() else out / name
        base = {e["label"]: e for e in json.loads((run / "eval-base" / "results.json").read_text())["entries"]}
        sft = json.loads((run / "eval-sft_only" / "results.json").read_text())
        glue_wf = glue_over_well_formed(run / "eval-sft_only" / "samples.jsonl")
        summary = json.loads((run / "sft-skillfactory" / "summary.json").read_text())
        print(f"\n== {name} ({overrides or 'recipe as is'}): {summary['traces']} SFT traces "
              f"({summary.get('replay_traces', 0)} replay), {summary['steps']} steps; {secs:.0f} s wall")
        print(f"{'entry':18} {'base':>6} {'sft':>6} {'kept':>6} {'well_formed':>12} {'glue(wf)':>9} {'glue(all)':>10}")
        ok = True
        for e in sft["entries"]:
            b = base[e["label"]]["accuracy"]
            kept = e["accuracy"] / b if b else float("nan")
            sk = e["skills"]
            v, g = glue_wf.get(e["label"], (0, 0))
            print(f"{e['label']:18} {b:6.3f} {e['accuracy']:6.3f} {kept:6.2f} {sk.get('well_formed_rate') or 0:12.2f} "
                  f"{(v / g if g else float('nan')):9.2f} {sk.get('glue_verbatim_rate') or 0:10.2f}")
            if e["label"] in KEPT and not kept >= 0.5:
                ok = False
        print(f"keeps >= half the base accuracy on {', '.join(KEPT)}: {'yes' if ok else 'no'}")


if __name__ == "__main__":
    main()
