"""End to end on a real (random, tiny) model through the hf backend: eval -> report, and a resumed re-run."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_eval_and_report_on_tiny_model(tiny_model_dir, tmp_path):
    pytest.importorskip("skillfactory.generation.hf")
    from skillfactory.evaluation.evaluate import EvalConfig, evaluate
    from skillfactory.report import write_report

    suite = [{"task": "countdown", "params": {"num_args": 2}, "n": 2, "samples": 2, "max_new_tokens": 12},
             {"task": "multiplication", "params": {"digits": 2}, "n": 2, "samples": 2, "max_new_tokens": 12}]
    cfg = EvalConfig(model=str(tiny_model_dir), label="base", suite=suite, out=str(tmp_path / "eval"),
                     budget_forcing={"enabled": True, "budgets": [0, 1], "entries": ["countdown"], "samples": 1})
    res = evaluate(cfg)
    assert [e["n"] for e in res["entries"]] == [4, 4]
    assert all(0 < e["mean_tokens"] <= 12 for e in res["entries"])
    (curve,) = res["budget_forcing"]["curves"]
    assert len(curve["points"]) == 2
    lines = [json.loads(x) for x in (tmp_path / "eval" / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and {x["task"] for x in lines} == {"countdown", "multiplication"}
    again = evaluate(cfg)  # everything is saved: nothing is generated, same results
    assert again == res
    html = write_report([tmp_path / "eval"], tmp_path / "report", title="tiny")
    assert html.exists() and (tmp_path / "report" / "report.md").exists()
