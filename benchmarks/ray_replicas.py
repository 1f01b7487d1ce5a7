"""Throughput of the ray executor: 1 and 2 hf replicas (1 torch thread each) on the same work, side by side.

    python benchmarks/ray_replicas.py                       # the micro toy model, a local Ray with 2 CPUs
    python benchmarks/ray_replicas.py --model DIR --requests 256 --max-new-tokens 128 --repeats 3

The work is the sampling stage's: countdown prompts, ``--completions`` seeded completions each, cut into the
runner's fixed chunks (``--chunk`` completions), exactly what ``skillfactory sample --executor ray`` sends to its
replicas. Each configuration is timed from the first chunk sent to the last result back (replica start-up and
model loading are not counted: they are paid once per stage). Runs alternate 1, 2, 1, 2, ... so that load from
other processes on the machine falls on both; the best of ``--repeats`` is reported, with every run listed.
The completions of 1 and 2 replicas are compared (they must be the same: seeds are per work unit).
"""

from __future__ import annotations

import argparse
import os
import time

from skillfactory.generation.base import GenerationRequest, SamplingParams
from skillfactory.generation.runner import ExecutorConfig, GenerateJob, backend_factory, generate_job


def work(n_requests: int, completions: int, chunk: int, max_new_tokens: int) -> list[GenerateJob]:
    from skillfactory.tasks import get_task

    task = get_task("countdown", num_args=3)
    qs = task.generate(n_requests, seed=0, split="train")
    requests = [GenerationRequest([{"role": "user", "content": task.prompt(q, "original")}]) for q in qs]
    params = SamplingParams(n=completions, temperature=1.0, max_new_tokens=max_new_tokens, seed=0)
    per_chunk = max(1, chunk // completions)
    return [GenerateJob(tuple(requests[k:k + per_chunk]), params) for k in range(0, len(requests), per_chunk)]


def run(replicas: int, model: str, batch_size: int, jobs: list[GenerateJob]) -> dict:
    from skillfactory.generation.ray_executor import RayExecutor

    config = ExecutorConfig(name="ray", replicas=replicas, cpus_per_replica=1)
    executor = RayExecutor(config, backend_factory("hf", model, {"batch_size": batch_size}), "hf")
    try:
        executor.start()  # replicas up and models loaded before the clock starts
        t0 = time.perf_counter()
        results = list(executor.map(generate_job, jobs))
        seconds = time.perf_counter() - t0
        per_replica = [t / seconds for t in executor.tokens]
    finally:
        executor.close()
    tokens = sum(c.n_tokens for chunk in results for comps in chunk for c in comps)
    texts = [c.text for chunk in results for comps in chunk for c in comps]
    return {"replicas": replicas, "seconds": seconds, "tokens": tokens, "tok_s": tokens / seconds,
            "per_replica": per_replica, "texts": texts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="HF model folder (default: the micro toy model, built if needed)")
    ap.add_argument("--requests", type=int, default=256, help="countdown prompts")
    ap.add_argument("--completions", type=int, default=4, help="completions per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=64, help="completions per chunk (the runner's chunk_size)")
    ap.add_argument("--batch-size", type=int, default=64, help="hf backend: sequences in flight per replica")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each configuration (the best is reported)")
    args = ap.parse_args()

    import ray

    model = args.model
    if model is None:
        from skillfactory.toy.build import build_toy_model

        model = str(build_toy_model("micro", seed=0, quiet=True))
    jobs = work(args.requests, args.completions, args.chunk, args.max_new_tokens)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    load = os.getloadavg()
    runs = [run(r, model, args.batch_size, jobs) for _ in range(args.repeats) for r in (1, 2)]
    ray.shutdown()

    best = {r: max((x for x in runs if x["replicas"] == r), key=lambda x: x["tok_s"]) for r in (1, 2)}
    print(f"model {model}: {args.requests} prompts x {args.completions} completions, <= {args.max_new_tokens} new "
          f"tokens, {len(jobs)} chunks of {args.chunk}; hf batch {args.batch_size}; 1 torch thread per replica; "
          f"{os.cpu_count()} CPUs, load average {load[0]:.1f} at start")
    print(f"{'replicas':>8} {'seconds':>8} {'tokens':>8} {'tokens/s':>9}  per replica tok/s   (every run tok/s)")
    for r in (1, 2):
        b = best[r]
        every = ", ".join(f"{x['tok_s']:,.0f}" for x in runs if x["replicas"] == r)
        per = " / ".join(f"{t:,.0f}" for t in b["per_replica"])
        print(f"{r:>8} {b['seconds']:>8.2f} {b['tokens']:>8} {b['tok_s']:>9,.0f}  {per:<18} ({every})")
    same = all(x["texts"] == runs[0]["texts"] for x in runs)
    print(f"ratio 2 replicas / 1 replica: {best[2]['tok_s'] / best[1]['tok_s']:.2f}x; "
          f"completions identical across all runs: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
