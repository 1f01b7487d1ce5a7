"""Traces from the published raw layout: ours vs the paper's own script, side by side on the same rows.

    python benchmarks/trace_raw_speed.py --published ~/SkillFactory                 # 3,000 and 30,000 questions
    python benchmarks/trace_raw_speed.py --published sft_data_creation.py --questions 3000

``--published`` is the paper's ``skill_factory/sft_data_creation.py`` (the file, or a clone of
github.com/Zayne-sprague/SkillFactory); without it the repository is cloned into the work folder. Its code is
run from there, never copied into this repository.

Input: synthetic rows in the released layout (``--rows`` per question: the four prompt variants x 4 samples,
one response, its correctness and extracted answer, ``--reflections`` reflections of which about 60% have a
verdict matching the truth), written once per size to ``--workdir`` as parquet. Both tools build ``*C_full``
with 5 responses and write their Hugging Face dataset:

- ours, twice: ``skillfactory traces build --raw FILE --formats "*C_full" --max-responses 5 --seed 0 --out OUT``
  (by default it also writes traces.jsonl and the LLaMA-Factory export: 1 GB in all at 30,000 questions), and
  with ``--outputs dataset`` (the dataset only, as the published script: a third of the bytes). The two
  datasets are compared byte for byte;
- published: its own command line (``--num_responses_ignore_correctness 5 --num_repeats_per_question 1
  --formats '*C_full'``) with ``load_dataset`` pointed at the local parquet and ``push_to_hub`` replaced by
  ``save_to_disk`` (its only output is a Hub push).

Each run is a fresh child process; the wall time includes interpreter start and imports, the CPU time counts
its worker processes too, the peak memory is its RSS high-water mark (``wait4``) and, for ours, the larger of that
and its process tree's summed PSS (shared pages split among the processes sharing them) sampled every 50 ms in one
more, untimed run (sampling slows a run). ``datasets`` converts the parquet to its Arrow cache on first use,
as it does a Hub download: by default the published side is timed on a filled cache (an untimed first run fills
it), which is the faster case for it; ``--cache cold`` times the first use.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

VARIANTS = ("original", "plan_and_execute", "alternatively", "rephrase")  # the published default variants
STEPS = ("First, {a} + {b} = {s}. Then {s} * {c} = {p}, which is not the target, so I try another order. ",
         "Next, {c} - {a} = {d}; multiplying by {b} gives {e}. ",
         "Let me also check {b} * {c} = {f} and subtract {a} to get {g}. ")

# Run by the published side's child: point load_dataset at the local file, save instead of pushing, then run
# the script unchanged as __main__ with its own command line.
WRAPPER = """
import runpy, sys
import datasets
raw, out, script = sys.argv[1], sys.argv[2], sys.argv[3]
_load = datasets.load_dataset
datasets.load_dataset = lambda name, *a, **k: _load("parquet", data_files={"train": raw})
datasets.Dataset.push_to_hub = lambda self, repo, *a, **k: self.save_to_disk(out)
datasets.disable_progress_bars()
sys.argv = [script, "--input_reflection_dataset_name", "local", "--output_dataset_name", "local",
            "--num_responses_ignore_correctness", "5", "--num_repeats_per_question", "1", "--formats", "*C_full"]
runpy.run_path(script, run_name="__main__")
"""


def generate(path: Path, n_questions: int, rows: int, n_reflections: int, seed: int = 0) -> None:
    """Write ``n_questions * rows`` raw-layout rows to ``path`` (parquet), in row groups of 1,000 questions."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    writer = None
    cols: dict[str, list] = {}
    for q in range(n_questions):
        a, b, c = rng.randint(2, 99), rng.randint(2, 99), rng.randint(2, 99)
        target = a * b - c
        gold = f"{a} * {b} - {c}"
        question = f"Using the numbers [{a}, {b}, {c}], create an equation that equals {target}. (question {q})"
        p_correct = rng.choice([0.0, 0.2, 0.4, 0.6, 0.9])
        for r in range(rows):
            correct = rng.random() < p_correct
            answer = gold if correct else f"{a} + {b} + {c}"
            nums = dict(a=a, b=b, c=c, s=a + b, p=(a + b) * c, d=c - a, e=(c - a) * b, f=b * c, g=b * c - a)
            work = "".join(rng.choice(STEPS).format(**nums) for _ in range(rng.randint(4, 10)))
            response = f"Attempt {r} at question {q}. {work}So the answer is:\n<answer>{answer}</answer>"
            refls = []
            for k in range(n_reflections):
                verdict = correct if rng.random() < 0.6 else not correct
                word = "Correct" if verdict else "Incorrect"
                refls.append(f"Reflection {k}: let me check {answer} step by step. {rng.choice(STEPS).format(**nums)}"
                             f"The result is {'' if verdict else 'not '}{target}.\n<verdict>{word}</verdict>")
            row = {"question": question, "answer": gold, "prompt_variant": VARIANTS[r % len(VARIANTS)],
                   "model_responses__mutated_prompts": [response],
                   "model_responses__mutated_prompts__eval_is_correct": [correct],
                   "model_responses__mutated_prompts__eval_extracted_answers": [answer],
                   "model_responses__mutated_prompts_reflection": refls}
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
        if q % 1000 == 999 or q == n_questions - 1:
            table = pa.table(cols)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            cols = {}
    writer.close()
    os.replace(tmp, path)


def tree_pss_mib(pid: int) -> float:
    """Proportional set size of ``pid`` and all its descendants, summed (MiB): a page shared by forked
    processes counts once in all, where summed RSS would count it once per process."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            rollup = Path(f"/proc/{p}/smaps_rollup").read_text()
            total += int(next(line for line in rollup.splitlines() if line.startswith("Pss:")).split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):  # gone meanwhile
            continue
    return total / 1024


def measure(cmd: list[str], log: Path, env: dict[str, str] | None = None,
            sample: bool = False) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak memory in MiB) of one child process and its own children; its output
    goes to ``log``. Memory: the biggest process's RSS high-water mark (``wait4``), and with ``sample`` the
    larger of that and the process tree's summed PSS, sampled every 50 ms (our build forks workers; the
    published script does not). Sampling reads every process's page tables and slowed our three-process
    build by 0.5-1 s, so the timed runs do not sample; one run more does, for the memory.
    Each run starts on a quiet disk (``sync``): the writes of the run before are not timed in this one."""
    import threading

    peak, done = [0.0], threading.Event()
    os.sync()  # the last run's files reach the disk before this one starts, not while it runs
    time.sleep(1.0)
    with log.open("w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env)

        def sample_pss() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_pss_mib(proc.pid))

        sampler = threading.Thread(target=sample_pss, daemon=True) if sample else None
        if sampler:
            sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        if sampler:
            sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{cmd[0]} failed (exit {os.waitstatus_to_exitcode(status)}); see {log}")
    return wall, usage.ru_utime + usage.ru_stime, max(usage.ru_maxrss / 1024, peak[0])


def published_script(given: str | None, work: Path) -> Path:
    """The published ``sft_data_creation.py``: the given file, the file inside a given clone, or a fresh clone."""
    if given:
        p = Path(given).expanduser()
        p = p / "skill_factory" / "sft_data_creation.py" if p.is_dir() else p
        if not p.is_file():
            sys.exit(f"--published {given}: no sft_data_creation.py there")
        return p
    clone = work / "SkillFactory"
    if not clone.exists():
        url = "https://github.com/Zayne-sprague/SkillFactory"
        if subprocess.run(["git", "clone", "--depth", "1", url, str(clone)]).returncode != 0:
            sys.exit(f"could not clone {url}; give --published PATH to a copy of skill_factory/sft_data_creation.py")
    return clone / "skill_factory" / "sft_data_creation.py"


def run_published(script: Path, raw: Path, work: Path, n: int, cache: str) -> tuple[float, float, float, int]:
    """(wall, CPU, peak MiB, traces) of the published script; ``datasets`` caches the parquet as Arrow the first
    time (as it does a Hub download): ``warm`` times a run on a filled cache, ``cold`` empties it first."""
    out, hf_cache = work / f"out_published_q{n}", work / f"hf_cache_q{n}"
    env = {**os.environ, "HF_DATASETS_CACHE": str(hf_cache), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", WRAPPER, str(raw), str(out), str(script)]
    if cache == "cold":
        shutil.rmtree(hf_cache, ignore_errors=True)
    elif not hf_cache.exists():
        measure(cmd, work / f"published_q{n}.warmup.log", env)
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, peak = measure(cmd, work / f"published_q{n}.log", env)
    return wall, cpu, peak, len(__import__("datasets").load_from_disk(str(out)))


#: What our side writes, by row: everything it writes by default, and what the published script writes.
OURS = {"all three outputs": None, "the dataset only": "dataset"}


def run_ours(raw: Path, work: Path, n: int, workers: int | None = None, outputs: str | None = None,
             sample: bool = False) -> tuple[float, float, float, int]:
    out = work / f"out_ours_q{n}" if outputs is None else work / f"out_ours_q{n}_{outputs}"
    exe = Path(sys.executable).with_name("skillfactory")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "skillfactory.cli"]
    cmd += ["traces", "build", "--raw", str(raw), "--formats", "*C_full", "--max-responses", "5", "--seed", "0",
            "--out", str(out), "--force"] + (["--workers", str(workers)] if workers else []) + \
        (["--outputs", outputs] if outputs else [])
    shutil.rmtree(out, ignore_errors=True)  # as for the published side: not timed replacing the last run's files
    wall, cpu, peak = measure(cmd, work / f"ours_q{n}.log", sample=sample)
    return wall, cpu, peak, json.loads((out / "summary.json").read_text())["traces"]


def same_dataset(a: Path, b: Path) -> bool:
    """Do two builds' dataset folders hold the same bytes?"""
    names = sorted(p.name for p in a.iterdir())
    return names == sorted(p.name for p in b.iterdir()) and all(
        (a / name).read_bytes() == (b / name).read_bytes() for name in names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--published", help="sft_data_creation.py or a clone of Zayne-sprague/SkillFactory")
    ap.add_argument("--questions", type=int, nargs="+", default=[3_000, 30_000])
    ap.add_argument("--rows", type=int, default=16, help="raw rows per question")
    ap.add_argument("--reflections", type=int, default=4, help="reflections per row")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side; the fastest is shown")
    ap.add_argument("--cache", choices=["warm", "cold"], default="warm", help="published side: datasets' Arrow cache")
    ap.add_argument("--workdir", default="/tmp/skillfactory_trace_raw_bench")
    ap.add_argument("--only", choices=["ours", "published"], help="run one side only")
    ap.add_argument("--workers", type=int, help="ours: --workers N (default: its own choice, one per CPU up to 4)")
    args = ap.parse_args()

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    script = published_script(args.published, work) if args.only != "ours" else None
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; published script: {script} "
          f"({args.cache} datasets cache); fastest of {args.repeat}")
    print(f"{'questions':>9} {'rows':>7} {'in MiB':>6} | {'published s':>11} {'cpu s':>6} {'MiB':>6} {'traces':>7} | "
          f"{'ours, writing':<18} {'s':>5} {'cpu s':>6} {'MiB':>5} {'traces':>7} | {'speed-up':>8} {'(cpu)':>6} "
          f"{'memory':>6}")
    nan = (float("nan"),) * 3 + (0,)
    for n in args.questions:
        raw = work / f"raw_q{n}_r{args.rows}_f{args.reflections}.parquet"
        if not raw.exists():
            print(f"  writing {raw} ...", flush=True)
            generate(raw, n, args.rows, args.reflections)
        pub, ours = [], {mode: [] for mode in OURS}
        for _ in range(args.repeat):  # the two tools, and our two modes, in turn: each meets the same load
            if args.only != "ours":
                pub.append(run_published(script, raw, work, n, args.cache))
            if args.only != "published":
                for mode, outputs in OURS.items():
                    ours[mode].append(run_ours(raw, work, n, args.workers, outputs))
        pw, pc, pm, pt = min(pub, key=lambda x: x[0]) if pub else nan
        for mode, outputs in OURS.items():
            ow, oc, om, ot = min(ours[mode], key=lambda x: x[0]) if ours[mode] else nan
            if ours[mode]:  # its memory: the process tree's PSS, sampled in a run of its own (not timed)
                om = max(om, run_ours(raw, work, n, args.workers, outputs, sample=True)[2])
            print(f"{n:>9} {n * args.rows:>7} {raw.stat().st_size / 2**20:>6.0f} | {pw:>11.1f} {pc:>6.1f} "
                  f"{pm:>6.0f} {pt:>7} | {mode:<18} {ow:>5.1f} {oc:>6.1f} {om:>5.0f} {ot:>7} | {pw / ow:>7.1f}x "
                  f"{pc / oc:>5.1f}x {om / pm:>6.2f}", flush=True)
        if args.only != "published":
            same = same_dataset(work / f"out_ours_q{n}" / "dataset", work / f"out_ours_q{n}_dataset" / "dataset")
            print(f"{'':>9} our dataset, written alone or with the other two outputs: "
                  f"{'the same bytes' if same else 'DIFFERENT BYTES'}", flush=True)
    print("speed-up: published / ours in wall time (CPU time, user+sys, in brackets: less sensitive to other load);"
          " memory: ours peak (PSS of its processes, in a run of its own) / published peak RSS. Wall includes start-up"
          " and imports. "
          f"Load average now {os.getloadavg()[0]:.1f}.")


if __name__ == "__main__":
    main()
