"""CPU per trace of the builder's worker side (what each worker process runs on its chunks), two checkouts side by side.

    python benchmarks/trace_chunk_speed.py --raw /tmp/skillfactory_trace_raw_bench/raw_q30000_r16_f4.parquet \
        --other /path/to/another/checkout/src --pairs 4

The raw file is one ``benchmarks/trace_raw_speed.py`` writes (16 rows per question, 4 reflections each). Each run
is a fresh child process: it reads the file, then times ``_build_chunk`` (what a worker runs: building the
``*C_full`` x 5 traces and encoding them for the dataset) on ``--chunks`` chunks, CPU time of the process with the
collector frozen as in a build, the fastest of ``--repeat`` passes, and prints a digest of the traces' JSONL
lines (the two checkouts must agree). With
``--other``, runs of that source tree (put first on ``PYTHONPATH``) and of this one alternate ``--pairs`` times,
so both meet the same load; the minimum of each side is printed. The figure is CPU time in one process: the
build's wall time also holds reading, the workers' start and the parent's writing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import gc, hashlib, sys, time
from skillfactory.traces.build import TraceConfig, _build_chunk, _chunks
from skillfactory.traces.clean import TextScreen
from skillfactory.traces.raw import load_raw

raw, n_chunks, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = TraceConfig(raw=raw, formats=["*C_full"], max_responses=5, seed=0, out="unused", outputs=["dataset"])
corpus = load_raw(cfg.raw, cfg.columns, TextScreen.for_tokenizer(None))
gc.freeze()
chunks = _chunks(len(corpus.units), cfg)[:n_chunks]
seconds = []
for rep in range(repeat):
    digest, n, t = hashlib.sha256(), 0, time.process_time()
    for span in chunks:
        part, _ = _build_chunk(corpus, cfg, None, span)
        n += part.n
        digest.update(part.digests)  # the sha256 of each trace's JSONL line
    seconds.append(time.process_time() - t)
print(f"{n} {1e6 * min(seconds) / n:.1f} {digest.hexdigest()[:16]}")
"""


def run(raw: str, chunks: int, repeat: int, src: str | None) -> tuple[int, float, str]:
    env = dict(os.environ)
    if src:
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    out = subprocess.run([sys.executable, "-c", CHILD, raw, str(chunks), str(repeat)], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1]), out[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--raw", required=True, help="a raw-layout parquet file (benchmarks/trace_raw_speed.py writes one)")
    ap.add_argument("--other", help="another checkout's src/ folder, run alternately with this one")
    ap.add_argument("--chunks", type=int, default=20, help="chunks of 200 questions timed")
    ap.add_argument("--repeat", type=int, default=6, help="passes over them in each run (fastest kept)")
    ap.add_argument("--pairs", type=int, default=3, help="runs of each side")
    args = ap.parse_args()
    if not Path(args.raw).is_file():
        sys.exit(f"--raw {args.raw}: no such file (run benchmarks/trace_raw_speed.py --only ours first)")
    sides = {"other": args.other, "this": None} if args.other else {"this": None}
    seen: dict[str, list[tuple[int, float, str]]] = {side: [] for side in sides}
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for _ in range(args.pairs):
        for side, src in sides.items():
            seen[side].append(run(args.raw, args.chunks, args.repeat, src))
            n, us, digest = seen[side][-1]
            print(f"  {side:5s} {n} traces: build + encode {us:.1f} us/trace, digest {digest}", flush=True)
    for side, runs in seen.items():
        print(f"{side:5s} fastest: build + encode {min(r[1] for r in runs):.1f} us/trace "
              f"({sides[side] or 'this checkout'})")
    if len({r[2] for runs in seen.values() for r in runs}) > 1:
        print("DIFFERENT TRACES between the two sides")


if __name__ == "__main__":
    main()
