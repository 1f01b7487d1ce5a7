"""Output-folder locks: a second writer is refused in one line, a killed run's lock is taken over, the same
process re-enters; every stage and ``run`` hold their folder; two real ``skillfactory sample`` runs on one
``--out`` leave every sample exactly once."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from skillfactory.locking import LOCK_FILE, FolderLockedError, folder_lock

HOLDER = textwrap.dedent("""
    import sys
    from skillfactory.locking import folder_lock
    with folder_lock(sys.argv[1], "holder"):
        print("locked", flush=True)
        sys.stdin.read()  # hold until the test closes our stdin (or kills us)
""")


def start_holder(folder: Path) -> subprocess.Popen:
    """Another process that takes ``folder``'s lock and keeps it until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


def plant_stale_lock(folder: Path) -> int:
    """Leave ``folder`` locked by a SIGKILLed process, the way a killed run leaves it; returns its pid."""
    proc = start_holder(folder)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdin.close()
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == proc.pid  # its record is still there
    return proc.pid


# ---- the lock ----------------------------------------------------------------------------------------------------
def test_a_second_writer_is_refused_in_one_line_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    holder = start_holder(out)
    try:
        with pytest.raises(FolderLockedError) as e, folder_lock(out, "sample"):
            pass
    finally:
        stop(holder)
    msg = str(e.value)
    assert "\n" not in msg
    for part in (str(out), f"pid {holder.pid}", socket.gethostname(), "holder", "started", "-c"):
        assert part in msg
    with folder_lock(out, "sample"):  # released with its holder; a clean release leaves no record behind
        pass
    assert not (out / LOCK_FILE).exists()


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(tmp_path, capsys):
    out = tmp_path / "out"
    dead = plant_stale_lock(out)
    with folder_lock(out, "sample"):
        assert json.loads((out / LOCK_FILE).read_text())["pid"] == os.getpid()
    note = capsys.readouterr().err.strip()
    assert note.startswith(f"note: {out}: taking over") and f"pid {dead}" in note and "\n" not in note
    assert not (out / LOCK_FILE).exists()


def test_the_same_process_re_enters_its_own_lock(tmp_path, capsys):
    out = tmp_path / "out"
    with folder_lock(out, "run"):
        with folder_lock(tmp_path / "." / "out", "report"), folder_lock(out / "sub", "sample"):
            pass
        assert json.loads((out / LOCK_FILE).read_text())["what"] == "run"  # the inner exit kept the lock
        refused = subprocess.run([sys.executable, "-c", HOLDER, str(out)], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL)
        assert refused.returncode != 0 and "FolderLockedError" in refused.stderr
    assert not (out / LOCK_FILE).exists()
    assert capsys.readouterr().err == ""


def test_training_ranks_other_than_zero_take_no_lock(tmp_path, monkeypatch):
    out = tmp_path / "out"
    holder = start_holder(out)  # rank 0 of the same launch, say
    try:
        monkeypatch.setenv("RANK", "1")
        with folder_lock(out, "sft", rank_zero_only=True):
            pass
        monkeypatch.setenv("RANK", "0")
        with pytest.raises(FolderLockedError), folder_lock(out, "sft", rank_zero_only=True):
            pass
    finally:
        stop(holder)


def test_without_fcntl_the_block_runs_unlocked_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl now raises ImportError
    with caplog.at_level(logging.WARNING, logger="skillfactory.locking"), folder_lock(tmp_path / "out", "sample"):
        assert not (tmp_path / "out" / LOCK_FILE).exists()
    assert "not locked" in caplog.text


# ---- every stage holds its folder ----------------------------------------------------------------------------------
def _stage_calls(tmp_path: Path):
    from skillfactory.evaluation.evaluate import EvalConfig, evaluate
    from skillfactory.reflection import ReflectConfig, reflect
    from skillfactory.report import write_report
    from skillfactory.sampling import SampleConfig, sample
    from skillfactory.traces.build import TraceConfig, build_traces
    from skillfactory.training.export.accelerate import AccelerateExportConfig, export_accelerate
    from skillfactory.training.export.llamafactory import LlamaFactoryExportConfig, export_llamafactory
    from skillfactory.training.export.verl import VerlExportConfig, export_verl
    from skillfactory.training.grpo import GRPORunConfig, run_grpo
    from skillfactory.training.sft import SFTRunConfig, run_sft

    x = str(tmp_path / "missing")  # inputs that do not exist: the lock is refused before they are looked at
    return {
        "sample": lambda out: sample(SampleConfig(model=x, out=out)),
        "reflect": lambda out: reflect(ReflectConfig(samples=x, out=out)),
        "traces": lambda out: build_traces(TraceConfig(samples=x, reflections=x, out=out)),
        "sft": lambda out: run_sft(SFTRunConfig(model=x, traces=x, out=out)),
        "grpo": lambda out: run_grpo(GRPORunConfig(model=x, task="countdown", out=out)),
        "eval": lambda out: evaluate(EvalConfig(model=x, out=out)),
        "report": lambda out: write_report([x], out),
        "export verl": lambda out: export_verl(VerlExportConfig(task="countdown", out=out)),
        "export llamafactory": lambda out: export_llamafactory(LlamaFactoryExportConfig(traces=x, out=out)),
        "export accelerate": lambda out: export_accelerate(AccelerateExportConfig(out=out)),
    }


def test_every_stage_refuses_a_folder_another_process_writes(tmp_path):
    out = tmp_path / "out"
    holder = start_holder(out)
    try:
        for name, call in _stage_calls(tmp_path).items():
            with pytest.raises(FolderLockedError, match=f"pid {holder.pid}"):
                call(str(out))
    finally:
        stop(holder)


def test_run_refuses_a_root_another_process_writes(tmp_path):
    from skillfactory.pipeline import run_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: t\nout: {tmp_path / 'run'}\nbase_model: {{toy: {{preset: micro}}}}\n"
                      "task: {name: countdown, params: {num_args: 3}}\n")
    holder = start_holder(tmp_path / "run")
    try:
        with pytest.raises(FolderLockedError, match=f"pid {holder.pid}"):
            run_recipe(recipe)
    finally:
        stop(holder)


# ---- the issue: two real runs on one --out --------------------------------------------------------------------------
N, PER_VARIANT = 4, 4


@pytest.fixture
def tmp_model_cmd(tiny_model_dir):
    """A ``skillfactory sample`` command that runs several seconds on the tiny model (long enough to overlap)."""
    return [sys.executable, "-m", "skillfactory", "sample", "--model", str(tiny_model_dir), "--task", "countdown",
            "--param", "num_args=3", "-n", str(N), "--per-variant", str(PER_VARIANT), "--max-new-tokens", "48"]


def test_two_sample_runs_on_one_out_one_is_refused_and_every_sample_is_written_once(tmp_model_cmd, tmp_path):
    from skillfactory.prompting import VARIANTS

    out = tmp_path / "s"
    dead = plant_stale_lock(out)  # and the folder was left locked by a killed run before them
    cmd = [*tmp_model_cmd, "--out", str(out)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p, *p.communicate(timeout=120)) for p in procs]
    winners = [r for r in results if r[0].returncode == 0]
    losers = [r for r in results if r[0].returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [(p.returncode, err[-500:]) for p, _, err in results]
    (winner, _, winner_err), (loser, _, loser_err) = winners[0], losers[0]

    error = [line for line in loser_err.splitlines() if line.strip()][-1]
    assert loser.returncode == 2 and error.startswith(f"error: {out} is in use by another run")
    assert f"pid {winner.pid}" in error and "sample" in error
    assert sum(line.startswith("error:") for line in loser_err.splitlines()) == 1
    assert f"note: {out}: taking over the lock of a run that is no longer alive" in winner_err
    assert f"pid {dead}" in winner_err
    assert "Loading weights" not in winner_err + results[0][1] + results[1][1]  # a stage run alone: no library bar

    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    keys = Counter((r["question"]["id"], r["variant"], r["index"]) for r in rows)
    qids = [json.loads(line)["id"] for line in (out / "questions.jsonl").read_text().splitlines()]
    assert set(keys) == {(q, v, i) for q in qids for v in VARIANTS for i in range(PER_VARIANT)}
    assert max(keys.values()) == 1 and len(rows) == N * len(VARIANTS) * PER_VARIANT
    assert not (out / LOCK_FILE).exists()

