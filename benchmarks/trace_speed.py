"""Trace builder speed and memory at the published scale: 10k questions x 64 attempts x 4 reflections.

    nice -n 10 python benchmarks/trace_speed.py                       # full size (writes ~2.6 GB to --workdir)
    python benchmarks/trace_speed.py --questions 500 --attempts 16    # a quick look

Step 1 writes synthetic ``samples.jsonl`` + ``reflections.jsonl`` (real countdown questions; correct attempts
answer the gold expression, wrong ones a wrong one; reflections kept with some probability), skipped when the
files for these sizes already exist. Step 2 runs ``build_traces`` in a fresh child process and prints the
wall time (reading included), traces per second, the child's peak resident memory and CPU time. Goal: < 60 s, < 2 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

FILLER = ("Let me add and multiply the numbers in different orders and see which combination reaches the "
          "target. ")


def generate(work: Path, n_questions: int, n_attempts: int, n_reflections: int, seed: int = 0) -> None:
    from skillfactory.prompting import VARIANTS
    from skillfactory.tasks import get_task

    task = get_task("countdown", num_args=3)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    with (work / "samples.jsonl").open("w") as fs, (work / "reflections.jsonl").open("w") as fr:
        for qi, q in enumerate(task.generate(n_questions, seed=seed)):
            qjson = q.model_dump_json()
            prompts = {v: task.prompt(q, v) for v in VARIANTS}
            p_correct = rng.choice([0.0, 0.1, 0.3, 0.5, 0.8])
            for a in range(n_attempts):
                variant = VARIANTS[a % len(VARIANTS)]
                index = a // len(VARIANTS)
                correct = rng.random() < p_correct
                answer = q.gold if correct else "1 + 1"
                text = f"{FILLER * 4}Attempt {a}: {answer}\n<answer>{answer}</answer>"
                rest = {"variant": variant, "index": index, "prompt": prompts[variant], "text": text,
                        "extracted": answer, "correct": correct, "why": "ok" if correct else "wrong_value",
                        "n_tokens": 120, "finish_reason": "stop", "skip_reason": None}
                fs.write('{"schema_version":1,"question":' + qjson + "," + json.dumps(rest)[1:] + "\n")
                sid = f"{q.id}|{variant}|{index}"
                for k in range(n_reflections):
                    kept = rng.random() < 0.6
                    verdict = correct if kept else (not correct)
                    word = "Correct" if verdict else "Incorrect"
                    fr.write(json.dumps({
                        "schema_version": 1, "sample_id": sid, "question_id": q.id, "index": k,
                        "text": f"{FILLER * 2}Checking {answer}. <verdict>{word}</verdict>", "verdict": verdict,
                        "truth": correct, "kept": kept, "n_tokens": 60, "finish_reason": "stop", "skip_reason": None,
                    }) + "\n")
            if qi % 1000 == 999:
                print(f"  generated {qi + 1}/{n_questions} questions ({time.perf_counter() - t0:.0f}s)", flush=True)


CHILD = """
import json, sys, time
from skillfactory.traces.build import TraceConfig, build_traces
work, formats = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
s = build_traces(TraceConfig(samples=work + "/samples.jsonl", reflections=work + "/reflections.jsonl",
                             formats=formats.split(","), out=work + "/out"), force=True, progress=False)
m = json.load(open(work + "/out/manifest.json"))
print(json.dumps({"traces": s["traces"], "seconds": time.perf_counter() - t0, "load": m["seconds_load"],
                  "build": m["seconds_build"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--attempts", type=int, default=64)
    ap.add_argument("--reflections", type=int, default=4)
    ap.add_argument("--formats", default="*C_full")
    ap.add_argument("--workdir", default="/tmp/skillfactory_trace_bench")
    args = ap.parse_args()

    work = Path(args.workdir) / f"q{args.questions}_a{args.attempts}_r{args.reflections}"
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "done").exists():
        print(f"writing synthetic input to {work} ...", flush=True)
        generate(work, args.questions, args.attempts, args.reflections)
        (work / "done").touch()
    size = sum((work / f).stat().st_size for f in ("samples.jsonl", "reflections.jsonl")) / 2**20

    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, str(work), args.formats], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        sys.exit(res.stderr)
    r = json.loads(res.stdout.strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
    print(f"input: {args.questions} questions x {args.attempts} attempts x {args.reflections} reflections "
          f"({size:.0f} MiB JSONL), formats {args.formats}")
    print(f"traces: {r['traces']}  build_traces: {r['seconds']:.1f}s (read {r['load']:.1f}s, build+write "
          f"{r['build']:.1f}s)  process wall: {wall:.1f}s (imports included)")
    print(f"throughput: {r['traces'] / r['seconds']:.0f} traces/s  peak memory: {peak_mb:.0f} MiB  "
          f"CPU time: {cpu:.1f}s (user+sys; less sensitive than wall time to other load)  "
          f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
