"""Several seeds in one report: claims per seed beside the pooled ones, and the GRPO reward-rise check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from skillfactory.report import write_report
from skillfactory.report.claims import FAILED, HELD, ClaimsConfig, evaluate_claims
from skillfactory.report.load import TrainRun, load_inputs
from skillfactory.report.seeds import arm_of, claims_by_seed, reward_rise, seed_of
from test_report import experiment  # noqa: F401  (the report tests' session fixture: evaluations + GRPO logs)


def _log(path: Path, rewards: list[float]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    rows = [{"stage": "grpo", "step": i + 1, "reward_mean": r} for i, r in enumerate(rewards)]
    (path / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run(path: Path) -> TrainRun:
    return TrainRun(path.name, path, [json.loads(x) for x in (path / "train_log.jsonl").read_text().splitlines()])


def test_seed_of_reads_the_pipeline_layout(tmp_path):
    assert seed_of(tmp_path / "study" / "s12" / "eval-base") == "s12"
    assert seed_of(tmp_path / "study" / "eval-base") is None
    assert arm_of(tmp_path / "study" / "s3" / "grpo-rl_only") == "grpo-rl_only"
    assert arm_of(tmp_path / "runs" / "rl_only" / "grpo") == "rl_only/grpo"


def test_reward_rise_by_hand(tmp_path):
    # 10 steps: windows are steps 1-2 and 9-10. Seed 0 rises 0.0 -> 1.0, seed 1 stays at 0.5.
    a = _run(_log(tmp_path / "s0" / "grpo-x", [0.0, 0.0] + [0.5] * 6 + [1.0, 1.0]))
    b = _run(_log(tmp_path / "s1" / "grpo-x", [0.5] * 10))
    (row,) = reward_rise([a, b], resamples=200)
    assert row["arm"] == "grpo-x" and row["runs"] == 2 and row["seeds"] == ["s0", "s1"]
    assert row["per_seed"] == pytest.approx([1.0, 0.0])
    assert row["difference"] == pytest.approx(0.5) and row["first"] == pytest.approx(0.25)
    assert row["ci"] == pytest.approx([0.5, 0.5])  # constant windows: every resample gives the same difference
    assert row["status"] == HELD


def test_reward_that_falls_or_wobbles_is_not_called_a_rise(tmp_path):
    falls = _run(_log(tmp_path / "s0" / "grpo-f", [0.8, 0.6, 0.5, 0.4, 0.2]))
    wobbles = _run(_log(tmp_path / "s0" / "grpo-w", [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    rows = {r["arm"]: r for r in reward_rise([falls, wobbles], resamples=500)}
    assert rows["grpo-f"]["status"] == FAILED and rows["grpo-f"]["difference"] == pytest.approx(-0.6)
    # first window (0, 1) mean 0.5, last (0, 1) mean 0.5: no rise, and the interval spans zero
    w = rows["grpo-w"]
    assert w["difference"] == pytest.approx(0.0) and w["ci"][0] < 0 < w["ci"][1] and w["status"] != HELD


@pytest.fixture()
def study(experiment, tmp_path) -> Path:
    """The report tests' experiment laid out as a two-seed study: the same evaluations under s0 and s1."""
    root = tmp_path / "study"
    for s in ("s0", "s1"):
        for label in ("base", "rl_only", "skillfactory"):
            shutil.copytree(experiment / label, root / s / f"{label}")
            if s == "s1":  # evaluated with another seed, as each seed of a study is
                path = root / s / label / "eval" / "results.json"
                results = json.loads(path.read_text())
                path.write_text(json.dumps({**results, "seed": results["seed"] + 1}))
    (root / "experiment.json").write_text((experiment / "experiment.json").read_text())
    return root


def test_study_report_shows_each_seed_and_the_pooled_claims(study, tmp_path):
    cfg = ClaimsConfig(train_task="addsum", train_params={"digits": 1}, resamples=200)
    inputs = load_inputs([study])
    pooled = evaluate_claims(inputs.evals, cfg)
    by_seed = claims_by_seed(inputs.evals, cfg)
    assert list(by_seed) == ["s0", "s1"]
    one = evaluate_claims(load_inputs([study / "s0"]).evals, cfg)
    assert [c["status"] for c in by_seed["s0"]] == [c["status"] for c in one]
    assert by_seed["s1"][0]["difference"] == pytest.approx(one[0]["difference"])
    assert pooled[0]["difference"] == pytest.approx(one[0]["difference"])  # identical seeds pool to the same effect

    write_report([study], tmp_path / "r")
    md = (tmp_path / "r" / "report.md").read_text()
    assert "### Claims per seed" in md and "| claim | pooled | s0 | s1 |" in md
    seed = json.loads((study / "s0" / "base" / "eval" / "results.json").read_text())["seed"]
    assert f"(seeds {seed}, {seed + 1}, temperature" in md and f"(seed {seed}, " not in md  # every pooled seed
    assert "### Did RL raise the training reward?" in md
    # each arm's two seeds in one row; the fixture's reward climbs 0.1 -> 1.0 over 10 steps in every run
    assert "| rl_only/grpo | 2 | 10/10 | 0.150 | 0.950 | +0.800 [+0.725, +0.875] | s0: +0.800, s1: +0.800 | held |" in md
    assert (tmp_path / "r" / "grpo_reward.png").read_bytes()[:4] == b"\x89PNG"


def test_one_seed_report_has_no_per_seed_table(experiment, tmp_path):
    write_report([experiment], tmp_path)
    assert "Claims per seed" not in (tmp_path / "report.md").read_text()
