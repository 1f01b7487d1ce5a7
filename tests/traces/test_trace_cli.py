"""``skillfactory traces build|show`` through the real console script (the CLI contract used by checks)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from trace_helpers import raw_rows, write_records

from skillfactory.commands.traces import parse_formats

HERE = Path(__file__).parent


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", "from skillfactory.cli import main; main()", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_parse_formats():
    assert parse_formats("*C_full, *CC") == ["*C_full", "*CC"]
    assert parse_formats("*C:2,*C*IC:0.5") == {"*C": 2.0, "*C*IC": 0.5}


@pytest.mark.slow
def test_build_from_raw_and_records_then_show(tmp_path):
    raw = tmp_path / "raw.parquet"
    pq.write_table(pa.Table.from_pylist(raw_rows(21)), raw)
    res = cli("traces", "build", "--raw", str(raw), "--formats", "*C_full", "--max-responses", "5", "--seed", "0",
              "--out", str(tmp_path / "a"))
    assert res.returncode == 0, res.stderr
    traces = lines(tmp_path / "a" / "traces.jsonl")
    assert traces and {t["format"] for t in traces} == {"*C_full"}
    assert all([m["role"] for m in t["messages"]] == ["user", "assistant"] for t in traces)
    res = cli("traces", "build", "--raw", str(raw), "--formats", "*C_full", "--max-responses", "5", "--seed", "0",
              "--workers", "2", "--out", str(tmp_path / "a2"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "a2" / "traces.jsonl").read_bytes() == (tmp_path / "a" / "traces.jsonl").read_bytes()
    assert json.loads((tmp_path / "a2" / "manifest.json").read_text())["workers"] == 2
    res = cli("traces", "build", "--raw", str(raw), "--formats", "*C_full", "--max-responses", "5", "--seed", "0",
              "--outputs", "dataset", "--out", str(tmp_path / "a3"))  # as for a Hub push: the dataset only
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "a3" / "traces.jsonl").exists() and not (tmp_path / "a3" / "llamafactory").exists()
    arrow = "dataset/data-00000-of-00001.arrow"
    assert (tmp_path / "a3" / arrow).read_bytes() == (tmp_path / "a" / arrow).read_bytes()
    shown = cli("traces", "show", str(tmp_path / "a3"), "-n", "1")
    assert shown.returncode == 0 and "<sample>" in shown.stdout, shown.stderr

    s, r = write_records(tmp_path, 22, n_questions=10)
    res = cli("traces", "build", "--samples", str(s), "--reflections", str(r), "--formats", "*C*IC,*CC",
              "--distinct-variants", "--out", str(tmp_path / "b"))
    assert res.returncode == 0, res.stderr
    fmts = {t["format"] for t in lines(tmp_path / "b" / "traces.jsonl")}
    assert fmts and fmts <= {"*C*IC", "*CC"}
    assert (tmp_path / "b" / "config.yaml").exists()
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["traces"] == len(lines(tmp_path / "b" / "traces.jsonl"))

    shown = cli("traces", "show", str(tmp_path / "b" / "traces.jsonl"), "-n", "2")
    assert shown.returncode == 0 and shown.stdout.count("<sample>") >= 2 and "<verdict>" in shown.stdout


@pytest.mark.slow
def test_user_errors_are_one_line_with_exit_2(tmp_path):
    res = cli("traces", "build", "--raw", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "missing.parquet" in res.stderr and "Traceback" not in res.stderr
    res = cli("traces", "build", "--raw", "x.parquet", "--formats", "*C_ful", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "did you mean '*C_full'" in res.stderr
    res = cli("traces", "build", "--raw", "x.parquet")  # no --out, no --config: say which flag
    assert res.returncode == 2 and "field 'out': required: give --out (or out: in --config FILE)" in res.stderr
