"""The whole pipeline end to end on the micro toy model (recipes/smoke.yaml): every stage and arm, then a
re-run that must come entirely from the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from skillfactory.pipeline import build_plan, load_recipe, run_recipe
from skillfactory.pipeline.runner import DONE, stage_status

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "smoke.yaml"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_smoke_recipe_end_to_end_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLFACTORY_CACHE", str(tmp_path / "cache"))
    overrides = {"out": str(tmp_path / "run")}
    console = Console(file=open(tmp_path / "log.txt", "w"), width=120)
    outputs = run_recipe(RECIPE, overrides=overrides, console=console)

    root = tmp_path / "run" / "s0"
    for label in ("base", "rl_only", "skillfactory", "sft_only"):
        results = json.loads((root / f"eval-{label}" / "results.json").read_text())
        assert results["label"] == label
    for arm in ("grpo-rl_only", "grpo-skillfactory", "sft-skillfactory"):
        assert (root / arm / "final" / "config.json").exists()
        assert (root / arm / "train_log.jsonl").stat().st_size > 0
    report = outputs["report"]
    assert (report / "report.html").exists() or Path(report).name == "report.html"
    assert (root / "report" / "report.md").exists()

    # a re-run with nothing changed: every stage cached, nothing rewritten
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob(DONE)}
    stages = build_plan(load_recipe(RECIPE, overrides))
    assert {stage_status(s) for s in stages} == {"cached"}
    run_recipe(RECIPE, overrides=overrides, console=console)
    assert {p: p.stat().st_mtime_ns for p in root.rglob(DONE)} == mtimes
