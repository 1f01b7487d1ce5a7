"""The console entry point (cli.py): Ctrl-C is a one-line message and exit 130, never a silent 0."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _raw_file(path, n_questions: int, rows: int = 8) -> None:
    """A raw-layout parquet file, written column-wise (fast enough for thousands of questions)."""
    cols: dict[str, list] = {k: [] for k in ("question", "answer", "prompt_variant", "r", "c", "x", "refl")}
    for q in range(n_questions):
        for r in range(rows):
            correct = (q + r) % 3 == 0
            answer = f"{q} + {r}" if correct else "1 + 1"
            cols["question"].append(f"Question {q}: make {q + r}.")
            cols["answer"].append(f"{q} + {r}")
            cols["prompt_variant"].append(("original", "alternatively", "rephrase", "plan_and_execute")[r % 4])
            cols["r"].append([f"Attempt {r} at {q}, thinking it through step by step. <answer>{answer}</answer>"])
            cols["c"].append([correct])
            cols["x"].append([answer])
            cols["refl"].append([f"Checking {answer} again. <verdict>{'Correct' if correct else 'Incorrect'}</verdict>",
                                 "Hmm. <verdict>Correct</verdict>"])
    names = {"r": "model_responses__mutated_prompts", "c": "model_responses__mutated_prompts__eval_is_correct",
             "x": "model_responses__mutated_prompts__eval_extracted_answers",
             "refl": "model_responses__mutated_prompts_reflection"}
    pq.write_table(pa.table({names.get(k, k): v for k, v in cols.items()}), path)


@pytest.mark.skipif(sys.platform != "linux", reason="worker processes are forked on Linux only")
def test_ctrl_c_during_a_build_with_workers_exits_130_with_one_message_and_leaves_nothing(tmp_path):
    raw = tmp_path / "raw.parquet"
    _raw_file(raw, 6000)
    out = tmp_path / f"out-{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-c", "from skillfactory.cli import main; main()", "traces", "build", "--raw", str(raw),
           "--workers", "2", "--out", str(out)]
    # a session of its own (so the signal reaches the whole group, as a terminal's Ctrl-C does), SIGINT not ignored
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    pattern = f".skillfactory-{out.name}-parts-*"
    deadline = time.monotonic() + 120
    while not (glob.glob(f"/dev/shm/{pattern}") or glob.glob(str(tmp_path / pattern))):  # the workers have started
        assert proc.poll() is None and time.monotonic() < deadline, "the build ended before its workers were seen"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert "interrupted" in stderr and "Traceback" not in stderr + stdout, stderr
    assert not glob.glob(f"/dev/shm/{pattern}") and not glob.glob(str(tmp_path / pattern))  # hand-over files gone
    assert not (out / "traces.jsonl").exists() and not list(out.glob(".*.tmp"))  # nothing half-written kept


def test_a_command_that_exits_non_zero_makes_the_process_exit_non_zero(monkeypatch, capsys):
    """typer returns a command's ``Exit(1)`` outside standalone mode: the process must still exit 1."""
    import skillfactory.commands.tasks as tasks_cmd
    from skillfactory.cli import main

    failing = {"gold_verifies": False, "deterministic": True, "splits_disjoint": True, "rejects_empty": True, "n": 3}
    monkeypatch.setattr(tasks_cmd, "check_task", lambda *a, **k: failing)
    monkeypatch.setattr(sys, "argv", ["skillfactory", "tasks", "check", "countdown"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 1 and "0/1 tasks pass" in capsys.readouterr().out
