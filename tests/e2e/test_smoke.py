"""The whole pipeline end to end on the micro toy model (recipes/smoke.yaml): every stage and arm, a re-run that
must come entirely from the cache, and a run killed (SIGKILL) twice at different stages whose re-run must end
with exactly the results of the uninterrupted run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from skillfactory.pipeline import build_plan, load_recipe, run_recipe
from skillfactory.pipeline.runner import DONE, output_of, stage_status

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "smoke.yaml"
LABELS = ("base", "rl_only", "skillfactory", "sft_only")
# files whose bytes must not depend on whether the run was interrupted (paths and timings live elsewhere)
SAME_BYTES = ("sample/samples.jsonl", "reflect/reflections.jsonl", "traces-skillfactory/traces.jsonl",
              "sample-replay/samples.jsonl", "reflect-replay/reflections.jsonl", "traces-replay/traces.jsonl")
TRAIN_LOGS = ("grpo-rl_only", "sft-skillfactory", "grpo-skillfactory")
CONSOLE = "console.txt"  # what the fixture's run printed


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One uninterrupted smoke run as a person runs it, ``python -m skillfactory run`` in a fresh process, its
    console (stdout and stderr) kept in ``console.txt`` beside the run: (run root, cache dir, stage outputs)."""
    base = tmp_path_factory.mktemp("smoke")
    cache, run = base / "cache", base / "run"
    cmd = [sys.executable, "-m", "skillfactory", "run", str(RECIPE), "--set", f"out={run}"]
    with (base / CONSOLE).open("w") as fh:
        proc = subprocess.run(cmd, env={**os.environ, "SKILLFACTORY_CACHE": str(cache)}, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=1500, check=False)
    assert proc.returncode == 0, (base / CONSOLE).read_text()[-3000:]
    outputs = {s.name: output_of(s) for s in build_plan(load_recipe(RECIPE, {"out": str(run)}))}
    return run, cache, outputs


def _scores(root: Path, label: str) -> dict:
    results = json.loads((root / f"eval-{label}" / "results.json").read_text())
    return {"entries": results["entries"], "budget_forcing": results["budget_forcing"]}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoke_recipe_end_to_end_then_cached(smoke_run, monkeypatch):
    run_dir, cache, outputs = smoke_run
    monkeypatch.setenv("SKILLFACTORY_CACHE", str(cache))
    root = run_dir / "s0"
    for label in LABELS:
        results = json.loads((root / f"eval-{label}" / "results.json").read_text())
        assert results["label"] == label
    for arm in ("grpo-rl_only", "grpo-skillfactory", "sft-skillfactory"):
        assert (root / arm / "final" / "config.json").exists()
        assert (root / arm / "train_log.jsonl").stat().st_size > 0
    # replay: each task sampled in its own folder, joined, reflected on, built into one-attempt traces, in SFT
    assert sorted(p.name for p in (root / "sample-replay").iterdir() if p.is_dir()) == ["countdown-3", "multiplication-2"]
    joined = (root / "sample-replay" / "samples.jsonl").read_text().splitlines()
    assert len(joined) == (6 + 4) * 4  # questions x 4 variants x per_variant 1
    replay_traces = _lines(root / "traces-replay" / "traces.jsonl")
    sft_summary = json.loads((root / "sft-skillfactory" / "summary.json").read_text())
    assert sft_summary["replay_traces"] == replay_traces
    assert all(json.loads(x)["n_attempts"] == 1 for x in (root / "traces-replay" / "traces.jsonl").open())
    report = outputs["report"]
    assert (report / "report.html").exists() or Path(report).name == "report.html"
    assert (root / "report" / "report.md").exists()

    # a re-run with nothing changed: every stage cached, nothing rewritten
    overrides = {"out": str(run_dir)}
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob(DONE)}
    stages = build_plan(load_recipe(RECIPE, overrides))
    assert {stage_status(s) for s in stages} == {"cached"}
    run_recipe(RECIPE, overrides=overrides, console=Console(file=open(os.devnull, "w")))
    assert {p: p.stat().st_mtime_ns for p in root.rglob(DONE)} == mtimes


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoke_console_shows_bars_and_summaries_and_the_logs_go_to_the_stage_folders(smoke_run):
    """The console of a real run: per stage a bar and one summary line, no library chatter (raw metrics dicts,
    tqdm bars of model loads, dataset maps and saves, warnings); those are in each stage folder's files."""
    run_dir, _, outputs = smoke_run
    console = (run_dir.parent / CONSOLE).read_text()
    for name, out in outputs.items():  # one line each with its path whole (rich wraps at 80 columns off a terminal)
        assert re.search(rf"^{re.escape(name)} done in \d+ s -> {re.escape(str(out))}$", console, re.M), name
    for chatter in ("{'loss':", "'grad_norm'", "'learning_rate'", "'train_runtime'", "Loading weights", "Map:",
                    "Dropping fully masked", "Writing model shards", "examples/s]", "it/s]", "Warning:"):
        assert chatter not in console, f"{chatter!r} on the console:\n{console[-3000:]}"
    assert "toy[micro] built in" in console
    assert all("left" in line for line in console.splitlines() if line.startswith("pretraining "))
    assert re.search(r"^sft: 4/4 steps in [0-9.]+ s, loss [0-9.]+ -> [0-9.]+$", console, re.M), console[-3000:]
    assert len(re.findall(r"^grpo: 2/2 steps in [0-9.]+ s, reward [0-9.]+ -> [0-9.]+$", console, re.M)) == 2
    root = run_dir / "s0"
    for arm in TRAIN_LOGS:
        log = (root / arm / "log.txt").read_text()
        assert "Running training" in log, arm  # transformers' own account of the run
        assert len(_train_log(root / arm)) == (4 if arm.startswith("sft") else 2), arm  # every step's metrics
    assert (root / "sample" / "log.txt").exists() and (root / "eval-base" / "log.txt").exists()


def _run_until(out: Path, env: dict, log: Path, kill_when=None, timeout: float = 900) -> bool:
    """Run the smoke recipe in a child process; SIGKILL its process group once ``kill_when()`` is true.
    Returns True if it ran to the end (exit 0), False if it was killed."""
    cmd = [sys.executable, "-m", "skillfactory", "run", str(RECIPE), "--set", f"out={out}"]
    with log.open("a") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.time()
        while proc.poll() is None:
            if kill_when is not None and kill_when():
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return False
            if time.time() - t0 > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                raise AssertionError(f"smoke run did not finish in {timeout} s; log: {log}")
            time.sleep(0.05)
    assert proc.returncode == 0, log.read_text()[-3000:]
    return True


def _train_log(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in (folder / "train_log.jsonl").open()]
    return [{k: v for k, v in r.items() if "time" not in k and "per_second" not in k} for r in rows]


def _same_log(a: list[dict], b: list[dict]) -> bool:
    """Same steps, same keys, equal values - floats to 1e-6 relative: a stage run in a fresh process and the
    same stage run in a process that did other work first agree to the last bit in losses and rewards but not
    always in gradient norms (CPU reductions can take another path for differently aligned memory)."""
    import math

    def same(x, y) -> bool:
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)
        return x == y

    return len(a) == len(b) and all(r.keys() == q.keys() and all(same(r[k], q[k]) for k in r) for r, q in zip(a, b))


def _lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoke_killed_twice_then_rerun_gives_the_uninterrupted_results(smoke_run, tmp_path):
    run_dir, cache, _ = smoke_run
    env = {**os.environ, "SKILLFACTORY_CACHE": str(cache)}
    out, log = tmp_path / "run", tmp_path / "log.txt"
    root = out / "s0"
    # kill 1: in the middle of sampling (some samples written, the stage not finished)
    killed = not _run_until(out, env, log, kill_when=lambda: _lines(root / "sample" / "samples.jsonl") >= 40)
    # kill 2: once the skillfactory arm's SFT has started
    killed += not _run_until(out, env, log, kill_when=lambda: (root / "sft-skillfactory" / ".stage-pending.json").exists()
                             and not (root / "sft-skillfactory" / DONE).exists())
    assert killed >= 1, "the run finished before it could be killed"
    assert _run_until(out, env, log)

    ref = run_dir / "s0"
    for label in LABELS:
        assert _scores(root, label) == _scores(ref, label), label
    for rel in SAME_BYTES:
        assert (root / rel).read_bytes() == (ref / rel).read_bytes(), rel
    for arm in TRAIN_LOGS:  # the same steps with the same losses and rewards, each logged once
        assert _same_log(_train_log(root / arm), _train_log(ref / arm)), arm
    # nothing duplicated: one line per sample id in the resumed samples file
    rows = [json.loads(line) for line in (root / "sample" / "samples.jsonl").open()]
    ids = [(r["question"]["id"], r["variant"], r["index"]) for r in rows]
    assert len(ids) == len(set(ids))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoke_with_training_as_two_processes(smoke_run, tmp_path):
    """launcher.num_processes=2: every training stage runs as 2 gloo processes under accelerate launch with the
    same global batch; sampling and reflection run once (their files equal the one-process run's, no duplicates)."""
    run_dir, cache, _ = smoke_run
    env = {**os.environ, "SKILLFACTORY_CACHE": str(cache)}
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "skillfactory", "run", str(RECIPE), "--set", f"out={out}",
           "--set", "launcher.num_processes=2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    root, ref = out / "s0", run_dir / "s0"
    for arm, batch in (("sft-skillfactory", 4), ("grpo-rl_only", 8), ("grpo-skillfactory", 8)):
        manifest = json.loads((root / arm / "manifest.json").read_text())
        assert (manifest["world_size"], manifest["global_batch_size"]) == (2, batch), arm
        assert manifest["per_device_batch_size"] * manifest["gradient_accumulation_steps"] * 2 == batch
        assert (root / arm / "final" / "config.json").exists()
        assert json.loads((ref / arm / "manifest.json").read_text())["world_size"] == 1
    for rel in SAME_BYTES:  # generated once, exactly as by one process
        assert (root / rel).read_bytes() == (ref / rel).read_bytes(), rel
    for label in LABELS:
        assert (root / f"eval-{label}" / "results.json").exists()
