"""Small end-to-end runs of the SFT and GRPO stages on the 2-layer fixture model (CPU, a few steps each), through
the CLI: a loadable model at OUT/final, a per-step train log, resume, and one-line errors for bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from skillfactory.tasks.base import CheckResult, Task

pytestmark = pytest.mark.slow


class Digit(Task):
    """A test task a random model can sometimes solve: say the digit (anywhere in the completion).

    Its verifier is deliberately lenient so that GRPO groups have reward variance on an untrained model.
    """

    name = "digit"

    def make_question(self, rng):
        n = rng.randint(0, 9)
        return {"n": n}, str(n), {}

    def statement(self, question):
        return f"Say the number {question.fields['n']}."

    def check_answer(self, question, answer):
        return CheckResult.ok() if answer == question.gold else CheckResult.wrong("wrong_value")

    def check(self, question, text):
        return CheckResult.ok() if question.gold in text else CheckResult.wrong("wrong_value")


def _cli(monkeypatch, *args: str) -> int:
    from skillfactory.cli import main

    monkeypatch.setattr(sys, "argv", ["skillfactory", *args])
    try:
        main()
    except SystemExit as e:
        return e.code or 0
    return 0


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _traces(path: Path, n: int = 8) -> Path:
    rows = []
    for i in range(n):
        answer = (f"<think>\n<sample>\n3 * 5 + {i}\n</sample>\n<reflect>\n<verdict>Correct</verdict>\n</reflect>\n"
                  f"</think>\n\nSo the final answer is:\n\n<answer>\n3*5+{i}\n</answer>")
        rows.append({"messages": [{"role": "user", "content": f"Using the numbers 3, 5, {i}, create an expression."},
                                  {"role": "assistant", "content": answer}]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sft_cli_trains_saves_final_logs_steps_and_resumes(tmp_path, tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    traces, out = _traces(tmp_path / "traces.jsonl"), tmp_path / "sft"
    common = ["sft", "--model", str(tiny_model_dir), "--traces", str(traces), "--out", str(out), "--preset", "tiny",
              "--set", "save_steps=2", "--set", "per_device_batch_size=4", "--set", "global_batch_size=4"]
    assert _cli(monkeypatch, *common, "--max-steps", "2") == 0
    assert [r["step"] for r in _rows(out / "train_log.jsonl")] == [1, 2]
    assert (out / "checkpoints" / "checkpoint-2").is_dir()
    # a second run with a larger budget resumes from checkpoint-2 instead of starting over
    assert _cli(monkeypatch, *common, "--max-steps", "4") == 0
    log = _rows(out / "train_log.jsonl")
    assert [r["step"] for r in log] == [1, 2, 3, 4] and all(r["stage"] == "sft" and r["loss"] > 0 for r in log)
    assert log[-1]["loss"] < log[0]["loss"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["skipped_too_long"] == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["stage"] == "sft" and (manifest["world_size"], manifest["global_batch_size"]) == (1, 4)
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    tok = AutoTokenizer.from_pretrained(out / "final")
    assert model.config.vocab_size == len(tok)
    assert tok.chat_template == AutoTokenizer.from_pretrained(tiny_model_dir).chat_template


def test_sft_trains_on_replay_files_beside_the_traces(tmp_path, tiny_model_dir, monkeypatch):
    from skillfactory.training.sft import SFTRunConfig, run_sft

    traces, replay, empty = _traces(tmp_path / "t.jsonl", 4), _traces(tmp_path / "r.jsonl", 3), tmp_path / "e.jsonl"
    empty.write_text("")
    kw = dict(model=str(tiny_model_dir), traces=str(traces), preset="tiny", max_steps=1, per_device_batch_size=7,
              global_batch_size=7)
    summary = run_sft(SFTRunConfig(**kw, replay=[str(replay), str(empty)], out=str(tmp_path / "a")))
    # every row of both files in the one batch; an empty replay file (no question solved) only warns
    assert (summary["traces"], summary["replay_traces"], summary["trained_on"]) == (7, 3, 7)
    plain = run_sft(SFTRunConfig(**kw, out=str(tmp_path / "b")))
    assert plain["traces"] == 4 and "replay_traces" not in plain


def test_training_shows_one_bar_and_a_summary_line_not_every_steps_metrics(tmp_path, tiny_model_dir, monkeypatch,
                                                                           capfd):
    traces, out = _traces(tmp_path / "traces.jsonl"), tmp_path / "sft"
    assert _cli(monkeypatch, "sft", "--model", str(tiny_model_dir), "--traces", str(traces), "--out", str(out),
                "--preset", "tiny", "--max-steps", "3", "--set", "per_device_batch_size=4",
                "--set", "global_batch_size=4") == 0
    stdout, stderr = capfd.readouterr()
    console = stdout + stderr
    for printed_by_transformers in ("{'loss':", "'grad_norm'", "'train_runtime'", "| 1/3 ["):
        assert printed_by_transformers not in console, console[-3000:]
    assert re.search(r"^sft: 3/3 steps in [0-9.]+ s, loss [0-9.]+ -> [0-9.]+$", stderr, re.M), stderr[-3000:]
    assert [r["step"] for r in _rows(out / "train_log.jsonl")] == [1, 2, 3]  # the metrics are in the log


def test_grpo_changes_the_weights_and_logs_rewards(tmp_path, tiny_model_dir, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM

    out = tmp_path / "grpo"
    code = _cli(monkeypatch, "grpo", "--model", str(tiny_model_dir), "--task", f"{__name__}:Digit", "--out", str(out),
                "--preset", "tiny", "-n", "16", "--max-steps", "2", "--set", "max_completion_length=24",
                "--set", "per_device_batch_size=16", "--set", "global_batch_size=16", "--set", "learning_rate=0.01")
    assert code == 0
    log = _rows(out / "train_log.jsonl")
    assert [r["step"] for r in log] == [1, 2]
    for key in ("loss", "reward_mean", "completion_length", "clipped_ratio", "attempts", "verdicts"):
        assert all(r[key] is not None for r in log), key
    assert any(r["reward_mean"] > 0 for r in log)
    before = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    after = AutoModelForCausalLM.from_pretrained(out / "final").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["generation"] == "hf" and summary["steps"] == 2
    assert (summary["world_size"], summary["global_batch_size"], summary["prompts_per_step"]) == (1, 16, 4)


def test_bad_inputs_fail_with_one_line_errors(tmp_path, tiny_model_dir, monkeypatch, capsys):
    traces = tmp_path / "bad.jsonl"
    traces.write_text(json.dumps({"messages": [{"role": "tool", "content": "x"},
                                               {"role": "assistant", "content": "y"}]}) + "\n")
    no_tok = tmp_path / "no_tok"
    no_tok.mkdir()
    (no_tok / "config.json").write_text((Path(tiny_model_dir) / "config.json").read_text())
    good = _traces(tmp_path / "good.jsonl", 2)
    cases = [
        (["sft", "--model", str(tiny_model_dir), "--traces", str(traces), "--out", str(tmp_path / "a")],
         [f"{traces}:1", "'tool'"]),
        (["sft", "--model", str(no_tok), "--traces", str(good), "--out", str(tmp_path / "b")], ["no tokenizer"]),
        (["grpo", "--model", str(tiny_model_dir), "--task", "countdwn", "--out", str(tmp_path / "c")],
         ["unknown task 'countdwn'", "did you mean 'countdown'"]),
    ]
    for args, needles in cases:
        assert _cli(monkeypatch, *args) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and len(err.splitlines()) == 1, err
        for needle in needles:
            assert needle in err
