"""The `skillfactory tasks` commands: list, generate, check, verify, and their one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from skillfactory.cli import app
from skillfactory.records import Question, read_jsonl

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=True)


def test_list():
    res = run("tasks", "list")
    assert res.exit_code == 0
    for name in ("countdown", "multiplication", "letter_countdown", "acronym", "reasoning_gym", "num_args"):
        assert name in res.output


def test_generate_then_verify(tmp_path):
    q = tmp_path / "q.jsonl"
    res = run("tasks", "generate", "countdown", "-n", "12", "--seed", "4", "--split", "test",
              "--param", "num_args=4", "--param", "max_target=500", "-o", str(q))
    assert res.exit_code == 0, res.output
    qs = read_jsonl(q, Question)
    assert len(qs) == 12 and all(len(x.fields["numbers"]) == 4 and x.split == "test" for x in qs)
    assert all(x.fields["target"] <= 500 for x in qs)
    answers = tmp_path / "a.jsonl"
    lines = []
    for i, x in enumerate(qs[:9]):  # 3 right, 3 wrong value, 3 without an answer block; 3 unanswered
        text = [f"<answer>{x.gold}</answer>", f"<answer>({x.gold}) + 1</answer>", "I give up"][i % 3]
        lines.append(json.dumps({"id": x.id, "text": text}))
    answers.write_text("\n".join(lines) + "\n")
    res = run("tasks", "verify", "countdown", "--questions", str(q), "--answers", str(answers), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["correct"] == 3 and out["questions"] == 12 and out["answered"] == 9
    assert out["reasons"]["no_answer"] == 3 and out["reasons"]["missing"] == 3
    assert sum(out["reasons"].values()) == 9
    res = run("tasks", "verify", "countdown", "--questions", str(q), "--answers", str(answers))
    assert "accuracy 25.0%" in res.output and "no_answer" in res.output


def test_check_one_task():
    res = run("tasks", "check", "multiplication", "-n", "10", "--param", "digits=3")
    assert res.exit_code == 0, res.output
    assert "1/1 tasks pass" in res.output


@pytest.mark.parametrize("edit,where", [
    (lambda d: d["fields"].pop("numbers"), "fields.numbers"),
    (lambda d: d["fields"].update(target="many"), "fields.target"),
    (lambda d: d.pop("gold"), "gold"),
    (lambda d: d.update(task="multiplication"), "task"),
])
def test_malformed_questions_file_names_file_line_field(tmp_path, edit, where):
    q = tmp_path / "q.jsonl"
    assert run("tasks", "generate", "countdown", "-n", "4", "-o", str(q)).exit_code == 0
    rows = [json.loads(line) for line in q.read_text().splitlines()]
    edit(rows[2])
    q.write_text("".join(json.dumps(r) + "\n" for r in rows))
    answers = tmp_path / "a.jsonl"
    answers.write_text(json.dumps({"id": rows[0]["id"], "text": "<answer>1</answer>"}) + "\n")
    # through the real entry point: a one-line error, exit 2, no traceback
    cmd = [sys.executable, "-c", "from skillfactory.cli import main; main()", "tasks", "verify", "countdown",
           "--questions", str(q), "--answers", str(answers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"{q}:3" in proc.stderr and where in proc.stderr and "Traceback" not in proc.stderr


def test_bad_answers_file(tmp_path):
    q = tmp_path / "q.jsonl"
    assert run("tasks", "generate", "multiplication", "-n", "3", "-o", str(q)).exit_code == 0
    first = read_jsonl(q, Question)[0]
    a = tmp_path / "a.jsonl"
    a.write_text(json.dumps({"id": first.id, "text": "<answer>1</answer>"}) + "\n" + json.dumps({"id": first.id}) + "\n")
    res = run("tasks", "verify", "multiplication", "--questions", str(q), "--answers", str(a))
    assert res.exit_code != 0 and f"{a}:2: field 'text'" in str(res.exception)
    a.write_text(json.dumps({"id": "nope", "text": ""}) + "\n")
    res = run("tasks", "verify", "multiplication", "--questions", str(q), "--answers", str(a))
    assert "name no question" in str(res.exception)


def test_bad_param_writes_nothing(tmp_path):
    out = tmp_path / "q.jsonl"
    res = run("tasks", "generate", "countdown", "-n", "3", "--param", "num_args=9", "-o", str(out))
    assert res.exit_code != 0 and "num_args" in str(res.exception)
    assert not out.exists()
    res = run("tasks", "generate", "countdwn", "-n", "3", "-o", str(out))
    assert "did you mean 'countdown'" in str(res.exception) and not out.exists()
