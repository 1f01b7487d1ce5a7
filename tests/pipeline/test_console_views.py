"""What a run shows besides its bars: the plan (``--dry-run``), and at the end the claims and the accuracy table
from report.md, then where the report is."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from skillfactory.pipeline import print_headline
from skillfactory.pipeline.plan import build_plan
from skillfactory.pipeline.recipe import load_recipe
from skillfactory.pipeline.runner import print_plan

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "smoke.yaml"

REPORT = """# Report

## Claims

1. The trained model uses the skills (attempts, reflections, verdicts): **held**.

## Results

### Accuracy by task and difficulty

| task | difficulty | n | base | sft_only | rl_only | skillfactory |
|---|---|---|---|---|---|---|
| countdown | num_args=2 | 80 | 0.463 [0.325, 0.600] | 0.750 [0.637, 0.850] | 0.525 [0.375, 0.675] | 0.400 [0.300, 0.500] |
| multiplication | default | 80 | 0.863 [0.800, 0.925] | 0.650 [0.525, 0.762] | 0.850 [0.750, 0.938] | 0.637 [0.500, 0.762] |

### Skill usage

not shown
"""


def test_off_a_terminal_each_row_of_the_accuracy_table_is_one_line(tmp_path):
    (tmp_path / "report.md").write_text(REPORT)
    buf = io.StringIO()
    console = Console(file=buf)  # not a terminal: rich would lay it out in 80 columns
    print_headline(tmp_path / "report.html", console)
    lines = [line.rstrip() for line in buf.getvalue().splitlines()]
    assert any(line.startswith(" countdown") and line.endswith("0.400 [0.300, 0.500]") for line in lines), lines
    assert any(line.startswith(" multiplication ") and line.endswith("0.637 [0.500, 0.762]") for line in lines)
    assert "held" in buf.getvalue() and "not shown" not in buf.getvalue()
    assert lines[-1] == f"report: {tmp_path / 'report.html'} (and report.md, PNG plots)"
    assert console.width == 80  # given back


def test_the_plan_shows_every_stage_folder_whole(tmp_path, monkeypatch):
    """Cut to the column ("runs/quickstart/s…") a folder said nothing; off a terminal the table is wider, on a
    narrow one a folder folds onto the next line."""
    monkeypatch.chdir(tmp_path)
    stages = build_plan(load_recipe(RECIPE, {"out": "runs/a-rather-long-run-folder"}))
    buf = io.StringIO()
    print_plan(stages, Console(file=buf))
    assert all(str(s.out) in buf.getvalue() for s in stages), buf.getvalue()
    buf = io.StringIO()
    print_plan(stages, Console(file=buf, width=80, force_terminal=True, color_system=None))
    assert "…" not in buf.getvalue()
