"""The ray executor on a local Ray cluster (2 CPUs): 2 hf replicas of the tiny model write the same bytes as one
process (sample, reflect, eval); a replica SIGKILLed mid-run is replaced; a driver (the CLI) SIGKILLed mid-run and
run again ends with every (question, variant, index) exactly once, in the same bytes. One Ray for the module."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

from skillfactory.evaluation.evaluate import EvalConfig, evaluate  # noqa: E402
from skillfactory.generation.runner import ExecutorConfig  # noqa: E402
from skillfactory.records import Sample, read_jsonl  # noqa: E402
from skillfactory.reflection import ReflectConfig, reflect  # noqa: E402
from skillfactory.sampling import SampleConfig, sample  # noqa: E402

RAY2 = {"name": "ray", "replicas": 2}
TASK = {"task": "countdown", "params": {"num_args": 3}}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray (2 logical CPUs) for the module; the executor finds it running and leaves it running.

    The one-process runs here use 1 torch thread, like each replica: on a 2-core machine that is busy with other
    work, 2 OpenMP threads of a tiny model spin against each other (measured 30x slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
    torch.set_num_threads(threads)


def sample_cfg(model, out, executor=None, **kw) -> SampleConfig:
    base = dict(model=str(model), **TASK, n=4, per_variant=4, seed=0, max_new_tokens=48, chunk_size=8, out=str(out),
                backend_options={"batch_size": 8})
    return SampleConfig(**{**base, **kw}, **({"executor": executor} if executor else {}))


@pytest.fixture(scope="module")
def reference(tiny_model_dir, cluster, tmp_path_factory):
    """One process, no Ray: the bytes every other run must write."""
    out = tmp_path_factory.mktemp("ref")
    sample(sample_cfg(tiny_model_dir, out / "s"), quiet=True)
    return out / "s" / "samples.jsonl"


def exactly_once(path: Path, n_questions: int = 4, per_variant: int = 4) -> None:
    keys = [(s.question.id, s.variant, s.index) for s in read_jsonl(path, Sample)]
    assert len(keys) == len(set(keys)) == n_questions * 4 * per_variant


def test_two_replicas_write_the_bytes_of_one_process(tiny_model_dir, cluster, reference, tmp_path):
    sample(sample_cfg(tiny_model_dir, tmp_path / "s", RAY2), quiet=True)
    assert (tmp_path / "s/samples.jsonl").read_bytes() == reference.read_bytes()

    def rcfg(out, executor=None):
        return ReflectConfig(samples=str(reference), per_sample=2, max_new_tokens=24, chunk_size=8, out=str(out),
                             **({"executor": executor} if executor else {}))

    reflect(rcfg(tmp_path / "r1"), quiet=True)
    reflect(rcfg(tmp_path / "r2", RAY2), quiet=True)
    one = (tmp_path / "r1/reflections.jsonl").read_bytes()
    assert one == (tmp_path / "r2/reflections.jsonl").read_bytes() and one.count(b"\n") == 64 * 2


def test_eval_with_replicas_writes_the_same_samples(tiny_model_dir, cluster, tmp_path):
    suite = [{"task": "countdown", "params": {"num_args": 3}, "n": 4, "samples": 2, "max_new_tokens": 24}]
    bf = {"enabled": True, "budgets": [0, 1]}

    def ecfg(out, executor=None):
        return EvalConfig(model=str(tiny_model_dir), suite=suite, batch_questions=1, budget_forcing=bf,
                          out=str(tmp_path / out), **({"executor": executor} if executor else {}))

    evaluate(ecfg("one"))
    evaluate(ecfg("two", RAY2))
    for name in ("samples.jsonl", "budget_forcing.jsonl"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_a_killed_replica_is_replaced_and_nothing_is_lost(tiny_model_dir, cluster, reference, tmp_path, caplog):
    out = tmp_path / "kill"
    killed: list[int] = []

    def killer():  # once the first chunk is on disk, SIGKILL a replica that is in the middle of a chunk
        path = out / "samples.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (path.exists() and path.stat().st_size):
            time.sleep(0.005)
        while time.monotonic() < deadline and not killed:
            for name in ray.util.list_named_actors():
                info = ray.get(ray.get_actor(name).info.remote())
                if name.startswith("skillfactory-") and info["job"] is not None:
                    os.kill(info["pid"], signal.SIGKILL)
                    killed.append(info["pid"])
                    break

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with caplog.at_level(logging.WARNING, logger="skillfactory.generation.ray_executor"):
        sample(sample_cfg(tiny_model_dir, out, RAY2), quiet=True)
    thread.join(5)
    assert killed, "the run ended before a replica could be killed"
    assert any("died" in r.message and "run again" in r.message for r in caplog.records)
    exactly_once(out / "samples.jsonl")
    assert (out / "samples.jsonl").read_bytes() == reference.read_bytes()


@pytest.mark.slow
def test_a_killed_driver_resumes_from_disk(tiny_model_dir, cluster, reference, tmp_path):
    out = tmp_path / "drv"
    cmd = [sys.executable, "-m", "skillfactory", "sample", "--model", str(tiny_model_dir), "--task", "countdown",
           "--param", "num_args=3", "-n", "4", "--per-variant", "4", "--seed", "0", "--max-new-tokens", "48",
           "--batch-size", "8", "--set", "chunk_size=8", "--executor", "ray", "--replicas", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # first run: the command starts its own local Ray (in its own session, so killing the group takes it all)
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path, total = out / "samples.jsonl", 64
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and path.read_bytes().count(b"\n") >= 8:
                break
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    lines = path.read_bytes().count(b"\n") if path.exists() else 0
    assert 0 < lines < total, f"kill missed the run ({lines} lines): {proc.stderr.read().decode()[-2000:]}"
    # second run: joins the module's cluster (the `ray start --head` path) and finishes what is missing
    done = subprocess.run([*cmd, "--ray-address", cluster], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    exactly_once(path)
    assert path.read_bytes() == reference.read_bytes()
    assert json.loads((out / "manifest.json").read_text())["counts"]["samples"] == total


def test_executor_config_is_validated(tmp_path):
    from typer.testing import CliRunner

    from skillfactory.cli import app

    assert ExecutorConfig.model_validate("ray").name == "ray"
    with pytest.raises(ValueError, match="need the ray executor"):
        ExecutorConfig(replicas=2)
    with pytest.raises(ValueError):
        ExecutorConfig(name="dask")
    bad = CliRunner().invoke(app, ["sample", "--model", "m", "--replicas", "2", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--executor ray" in str(bad.exception)
