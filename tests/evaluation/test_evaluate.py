"""The evaluate stage on scripted completions: every aggregate checked against numbers computed by hand,
resume after a crash, the resume guard, budget-forcing curves, and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from eval_fakes import AddTask, ScriptedBackend, question_numbers
from typer.testing import CliRunner

from skillfactory.evaluation.evaluate import EvalConfig, EvalError, evaluate
from skillfactory.records import read_jsonl

N, S = 6, 4


def correct_count(a: int) -> int:
    """The script makes the first (a % 5) samples of a question right."""
    return a % 5


def plain_script(req, i, params):
    a, b = question_numbers(req)
    return f"ok <answer>{a + b}</answer>" if i < correct_count(a) else f"hmm no <answer>{a + b + 1}</answer>"


def tagged_script(req, i, params):
    a, b = question_numbers(req)
    return (f"<think>\n<sample>\n<answer>{a + b + 1}</answer>\n</sample>\n<reflect>\n<verdict>Incorrect</verdict>\n"
            f"</reflect>\n<sample>\n<answer>{a + b}</answer>\n</sample>\n<reflect>\n<verdict>Correct</verdict>\n"
            f"</reflect>\n</think>\n<answer>{a + b}</answer>")


def both(req, i, params):
    return tagged_script(req, i, params) if "What is" in req.messages[0]["content"] and \
        question_numbers(req)[0] >= 10 else plain_script(req, i, params)


SUITE = [{"task": "addsum", "params": {"digits": 1}, "n": N, "samples": S, "max_new_tokens": 64},
         {"task": "addsum", "params": {"digits": 2}, "n": N, "samples": S, "max_new_tokens": 64}]


def cfg(tmp_path, name="out", **kw):
    return EvalConfig(model="fake", label="base", suite=SUITE, out=str(tmp_path / name), batch_questions=2, **kw)


def test_metrics_by_hand(tmp_path):
    res = evaluate(cfg(tmp_path), backend=ScriptedBackend(both))
    one, two = res["entries"]
    qs = AddTask(digits=1).generate(N, seed=0, split="test")
    cs = [correct_count(q.fields["a"]) for q in qs]
    assert one["n"] == N * S and one["n_questions"] == N
    assert one["correct"] == sum(cs)
    assert one["accuracy"] == pytest.approx(sum(cs) / (N * S))
    for k in (1, 2, 4):
        expected = sum(1 - math.comb(S - c, k) / math.comb(S, k) for c in cs) / N
        assert one["pass_at_k"][str(k)] == pytest.approx(expected)
    assert one["mean_tokens"] == pytest.approx(sum(2 * c + 3 * (S - c) for c in cs) / (N * S))
    assert one["ci"][0] <= one["accuracy"] <= one["ci"][1]
    assert one["why"] == {k: v for k, v in {"ok": sum(cs), "wrong_value": N * S - sum(cs)}.items() if v}
    assert one["skills"]["attempts_per_answer"] == 1.0 and one["skills"]["tagged_rate"] == 0.0
    assert one["per_question"] == {q.id: [c, S] for q, c in zip(qs, cs)}
    # the tagged entry: 2 attempts, 2 right verdicts, one retry after Incorrect, one stop after Correct
    sk = two["skills"]
    assert two["accuracy"] == 1.0 and two["ci"] == [1.0, 1.0]
    assert (sk["attempts_per_answer"], sk["reflections_per_answer"], sk["verdicts_per_answer"]) == (2.0, 2.0, 2.0)
    assert (sk["verdict_accuracy"], sk["retry_after_incorrect"], sk["stop_after_correct"]) == (1.0, 1.0, 1.0)
    assert sk["final_matches_last_correct"] == 1.0
    assert (one["difficulty_value"], two["difficulty_value"]) == (1.0, 2.0)
    out = tmp_path / "out"
    samples = read_jsonl(out / "samples.jsonl")
    assert len(samples) == 2 * N * S
    s0 = samples[0]
    assert {"task", "params", "question_id", "text", "extracted", "correct", "why"} <= set(s0)
    assert json.loads((out / "results.json").read_text()) == res
    for name in ("summary.json", "manifest.json", "config.yaml", "questions.jsonl"):
        assert (out / name).exists()


def test_resume_after_crash_equals_uninterrupted(tmp_path):
    full = evaluate(cfg(tmp_path, "full"), backend=ScriptedBackend(plain_script))
    crashing = ScriptedBackend(plain_script, fail_after_calls=2)
    with pytest.raises(KeyboardInterrupt):
        evaluate(cfg(tmp_path, "resumed"), backend=crashing)
    path = tmp_path / "resumed" / "samples.jsonl"
    assert len(read_jsonl(path)) == 2 * 2 * S  # two finished batches of 2 questions
    with path.open("a") as f:
        f.write('{"entry": "torn')  # an interrupted write
    second = ScriptedBackend(plain_script)
    resumed = evaluate(cfg(tmp_path, "resumed"), backend=second)
    assert sum(len(reqs) for reqs, _ in second.calls) == 2 * N - 4  # only the unfinished questions
    recs = read_jsonl(path)
    keys = [(r["entry"], r["question_id"], r["index"]) for r in recs]
    assert len(keys) == len(set(keys)) == 2 * N * S
    assert resumed == full
    # a finished run does not even build a backend
    again = evaluate(cfg(tmp_path, "resumed").model_copy(update={"backend": "no_such_backend"}))
    assert again == full


def test_changed_settings_are_refused(tmp_path):
    evaluate(cfg(tmp_path), backend=ScriptedBackend(plain_script))
    with pytest.raises(EvalError, match="temperature"):
        evaluate(cfg(tmp_path, temperature=0.1), backend=ScriptedBackend(plain_script))


def thinking_script(req, i, params):
    a, b = question_numbers(req)
    if req.prefix == "":
        return f"<think>\n<sample>\n<answer>{a + b + 1}</answer>\n</sample>\n</think>\n<answer>{a + b + 1}</answer>"
    return f"<answer>{a + b}</answer>\n</sample>\n</think>\n<answer>{a + b}</answer>"


def test_budget_forcing_curves(tmp_path):
    c = cfg(tmp_path, budget_forcing={"enabled": True, "budgets": [0, 1, 2], "entries": ["addsum[digits=1]"],
                                      "questions": 3, "samples": 2})
    res = evaluate(c, backend=ScriptedBackend(thinking_script))
    (curve,) = res["budget_forcing"]["curves"]
    assert curve["entry"] == "addsum[digits=1]" and curve["mode"] == "count" and not curve["noop"]
    pts = {p["budget"]: p for p in curve["points"]}
    assert pts[0]["accuracy"] == 0.0 and pts[1]["accuracy"] == 1.0 and pts[2]["accuracy"] == 1.0
    assert [pts[b]["mean_forced"] for b in (0, 1, 2)] == [0, 1, 2]
    assert [pts[b]["attempts_per_answer"] for b in (0, 1, 2)] == [1, 2, 3]
    assert all(p["n"] == 6 for p in pts.values())
    assert pts[2]["mean_tokens"] > pts[1]["mean_tokens"] > pts[0]["mean_tokens"]
    forced = read_jsonl(tmp_path / "out" / "budget_forcing.jsonl")
    assert len(forced) == 3 * 3 * 2 and all(r["mode"] == "count" for r in forced)


def test_budget_forcing_on_a_base_model_is_a_recorded_noop(tmp_path):
    c = cfg(tmp_path, budget_forcing={"enabled": True, "budgets": [0, 2], "questions": 2, "samples": 1})
    res = evaluate(c, backend=ScriptedBackend(plain_script))
    curves = res["budget_forcing"]["curves"]
    assert len(curves) == 2 and all(cv["noop"] and "no-op" in cv["note"] for cv in curves)
    for cv in curves:
        assert cv["points"][0]["accuracy"] == cv["points"][1]["accuracy"]


def test_unknown_budget_forcing_entry(tmp_path):
    with pytest.raises(EvalError, match="not in the suite"):
        evaluate(cfg(tmp_path, budget_forcing={"enabled": True, "entries": ["nope"]}),
                 backend=ScriptedBackend(plain_script))


def test_cli_eval(tmp_path):
    from skillfactory.cli import app

    suite = tmp_path / "suite.yaml"
    suite.write_text("- {task: addsum, params: {digits: 1}, n: 3, samples: 2, max_new_tokens: 16}\n")
    out = tmp_path / "cli_out"
    r = CliRunner().invoke(app, ["eval", "--model", "fake", "--suite", str(suite), "--out", str(out), "--label", "base",
                                 "--backend", "eval_fakes:make_backend", "--budgets", "0,1"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    assert res["label"] == "base" and res["entries"][0]["accuracy"] == 0.5  # even samples right, odd wrong
    assert res["budget_forcing"]["enabled"] and res["budget_forcing"]["curves"][0]["noop"]


def test_cli_bad_suite_is_one_line(tmp_path):
    import subprocess
    import sys

    suite = tmp_path / "suite.yaml"
    suite.write_text("- {task: countdown, params: {num_arg: 3}}\n")
    exe = Path(sys.executable).parent / "skillfactory"
    if not exe.exists():
        pytest.skip("the skillfactory console script is not installed next to this python")
    p = subprocess.run([str(exe), "eval", "--model", "x", "--suite", str(suite), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert p.returncode == 2, p.stderr
    line = p.stderr.strip()
    assert "\n" not in line and "num_arg" in line and "num_args" in line


def test_token_budget_curve(tmp_path):
    c = cfg(tmp_path, budget_forcing={"enabled": True, "budgets": [], "token_budgets": [4, 40],
                                      "entries": ["addsum[digits=1]"], "questions": 2, "samples": 1})
    res = evaluate(c, backend=ScriptedBackend(thinking_script))
    (curve,) = res["budget_forcing"]["curves"]
    assert curve["mode"] == "tokens" and [p["budget"] for p in curve["points"]] == [4, 40]
    small, large = curve["points"]
    # 4 tokens: the first round is cut at 4 words mid-thought, so the answer is forced ("</think> <answer>")
    # and the scripted continuation answers right; 40: </think> comes early, so continuations are forced
    assert (small["mean_forced"], small["forced_answer_rate"], small["accuracy"]) == (0, 1.0, 1.0)
    # by hand (tokens = words): after k forced continuations the text holds 3k + 2 tokens; a 13th would need
    # 3*12 + 2 + 2 = 40 < 40: no, so 12 are forced, then the last round is cut at 40 tokens -> forced answer
    assert (large["mean_forced"], large["forced_answer_rate"], large["accuracy"]) == (12, 1.0, 1.0)
    forced = [r for r in read_jsonl(tmp_path / "out" / "budget_forcing.jsonl") if r["budget"] == 4]
    assert forced and all(r["text"].startswith("<think> <sample> <answer>") and
                          "</answer> </sample>\n</think>\n\n<answer>" in r["text"] for r in forced)


def test_console_off_a_terminal_is_the_summary_line_alone(tmp_path, capsys):
    """No blank line left by a bar that cannot redraw (a log file, CI), and the summary on one line."""
    config = cfg(tmp_path / ("a-long-folder-name-" * 4))
    evaluate(config, backend=ScriptedBackend(plain_script))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"eval base: 48 samples scored (48 generated now) -> {config.out}/results.json; ")
