"""The sampling stage: record counts, verification plumbing, determinism, resume after a crash, skips, CLI."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skillfactory.generation.base import Completion
from skillfactory.prompting import VARIANTS
from skillfactory.records import Sample, read_jsonl
from skillfactory.sampling import SampleConfig, StageError, pass_at_k, sample, summarize_samples
from skillfactory.tasks import get_task

TASK = {"task": "countdown", "params": {"num_args": 3}}


def cfg_for(model, out, **kw) -> SampleConfig:
    base = dict(model=str(model), **TASK, n=3, per_variant=2, seed=0, max_new_tokens=8, out=str(out),
                backend_options={"batch_size": 8})
    return SampleConfig(**{**base, **kw})


def lines(path: Path) -> list[str]:
    return sorted(path.read_text().splitlines())


class ScriptedBackend:
    """Answers with the gold answer for some variants and junk for others (no model needed)."""

    name = "scripted"

    def __init__(self, gold_by_prompt: dict[str, str], right_variants: set[str], prompt_variant: dict[str, str]):
        self.gold, self.right, self.variant_of = gold_by_prompt, right_variants, prompt_variant
        self.calls = 0

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(self, requests, params, progress=None):
        self.calls += 1
        out = []
        for r in requests:
            prompt = r.messages[-1]["content"]
            ok = self.variant_of[prompt] in self.right
            text = f"<answer>{self.gold[prompt]}</answer>" if ok else "I give up."
            out.append([Completion(text, 3, "stop") for _ in range(params.n)])
        return out


class CrashAfter:
    """Wraps a backend and raises after ``k`` generate calls: a simulated kill in the middle of a run."""

    name = "crash"

    def __init__(self, inner, k: int):
        self.inner, self.k, self.calls = inner, k, 0

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def generate(self, requests, params, progress=None):
        if self.calls >= self.k:
            raise KeyboardInterrupt("simulated crash")
        self.calls += 1
        return self.inner.generate(requests, params, progress)


@pytest.fixture(scope="module")
def hf(tiny_model_dir):
    from skillfactory.generation import get_backend

    return get_backend("hf", str(tiny_model_dir), batch_size=8)


def test_records_and_verification_plumbing(tmp_path):
    task = get_task(TASK["task"], **TASK["params"])
    qs = task.generate(3, seed=0)
    gold = {task.prompt(q, v): q.gold for q in qs for v in VARIANTS}
    variant_of = {task.prompt(q, v): v for q in qs for v in VARIANTS}
    backend = ScriptedBackend(gold, {"original", "rephrase"}, variant_of)
    summary = sample(cfg_for("unused", tmp_path, per_variant=3), backend=backend, quiet=True)

    samples = read_jsonl(tmp_path / "samples.jsonl", Sample)
    assert len(samples) == 3 * len(VARIANTS) * 3
    assert len({s.id for s in samples}) == len(samples)
    assert {(s.variant, s.correct) for s in samples} == {
        ("original", True), ("rephrase", True), ("plan_and_execute", False), ("alternatively", False)}
    wrong = [s for s in samples if not s.correct]
    assert {s.why for s in wrong} == {"no_answer"} and all(s.extracted is None for s in wrong)
    assert all(s.extracted == s.question.gold for s in samples if s.correct)
    assert all(s.prompt == task.prompt(s.question, s.variant) for s in samples)
    assert summary["accuracy_per_variant"] == {"alternatively": 0.0, "original": 1.0, "plan_and_execute": 0.0,
                                               "rephrase": 1.0}
    assert summary["accuracy"] == 0.5 and summary["pass@1"] == 0.5 and summary["pass@4"] > 0.5
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert len(read_jsonl(tmp_path / "questions.jsonl")) == 3
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["stage"] == "sample" and manifest["counts"]["samples"] == len(samples)
    assert (tmp_path / "config.yaml").exists()

    # a finished folder is not generated again
    calls = backend.calls
    sample(cfg_for("unused", tmp_path, per_variant=3), backend=backend, quiet=True)
    assert backend.calls == calls and len(read_jsonl(tmp_path / "samples.jsonl")) == len(samples)


def test_deterministic_with_seed(tmp_path, hf):
    a = sample(cfg_for("m", tmp_path / "a"), backend=hf, quiet=True)
    sample(cfg_for("m", tmp_path / "b"), backend=hf, quiet=True)
    sample(cfg_for("m", tmp_path / "c", seed=1), backend=hf, quiet=True)
    assert (tmp_path / "a/samples.jsonl").read_bytes() == (tmp_path / "b/samples.jsonl").read_bytes()
    assert a["samples"] == 3 * 4 * 2
    texts = lambda d: [s.text for s in read_jsonl(tmp_path / d / "samples.jsonl", Sample)]  # noqa: E731
    assert texts("a") != texts("c")  # another seed: other questions and other samples


@pytest.mark.parametrize("crash_after", [1, 3])
def test_resume_after_crash_equals_uninterrupted(tmp_path, hf, crash_after):
    full = tmp_path / "full"
    sample(cfg_for("m", full, chunk_size=4), backend=hf, quiet=True)
    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        sample(cfg_for("m", part, chunk_size=4), backend=CrashAfter(hf, crash_after), quiet=True)
    partial = read_jsonl(part / "samples.jsonl")
    assert 0 < len(partial) < 24
    sample(cfg_for("m", part, chunk_size=4), backend=hf, quiet=True)
    assert lines(part / "samples.jsonl") == lines(full / "samples.jsonl")


def test_resume_after_torn_write(tmp_path, hf):
    full = tmp_path / "full"
    sample(cfg_for("m", full), backend=hf, quiet=True)
    torn = tmp_path / "torn"
    torn.mkdir()
    data = (full / "samples.jsonl").read_bytes()
    cut = data.index(b"\n", len(data) // 3) + 40  # a third of the lines and 40 bytes of the next one
    (torn / "samples.jsonl").write_bytes(data[:cut])
    sample(cfg_for("m", torn), backend=hf, quiet=True)
    assert lines(torn / "samples.jsonl") == lines(full / "samples.jsonl")


def test_over_long_prompt_is_recorded_as_skipped(tmp_path, hf):
    # the fixture's context is 512 tokens: with 500 new tokens no countdown prompt fits
    summary = sample(cfg_for("m", tmp_path, max_new_tokens=500, n=1, per_variant=1), backend=hf, quiet=True)
    samples = read_jsonl(tmp_path / "samples.jsonl", Sample)
    assert len(samples) == 4 and summary["skipped"] == 4
    assert all(s.finish_reason == "skipped" and "context of 512" in s.skip_reason and not s.correct for s in samples)


def test_changed_settings_in_same_folder_are_refused(tmp_path):
    task = get_task(TASK["task"], **TASK["params"])
    qs = task.generate(3, seed=0)
    backend = ScriptedBackend({task.prompt(q, v): q.gold for q in qs for v in VARIANTS}, set(),
                              {task.prompt(q, v): v for q in qs for v in VARIANTS})
    sample(cfg_for("unused", tmp_path), backend=backend, quiet=True)
    with pytest.raises(StageError, match="temperature"):
        sample(cfg_for("unused", tmp_path, temperature=0.5), backend=backend, quiet=True)


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="variants"):
        SampleConfig(model="m", out="o", variants=["original", "sideways"])
    with pytest.raises(ValueError, match="per_variant"):
        SampleConfig(model="m", out="o", per_variant=0)


def test_pass_at_k_matches_enumeration():
    for n, c in [(4, 0), (4, 1), (5, 2), (6, 6)]:
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(outcomes, k))
            brute = sum(any(s) for s in subsets) / len(subsets)
            assert math.isclose(pass_at_k(n, c, k), brute)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_summary_truncation_and_skips():
    q = get_task(TASK["task"], **TASK["params"]).generate(1, seed=0)[0]
    mk = lambda i, reason, correct: Sample(question=q, variant="original", index=i, prompt="p", text="t",  # noqa: E731
                                           extracted=None, correct=correct, why="ok" if correct else "no_answer",
                                           n_tokens=5, finish_reason=reason)
    s = summarize_samples([mk(0, "length", False), mk(1, "stop", True), mk(2, "skipped", False), mk(3, "stop", False)])
    assert s["skipped"] == 1 and math.isclose(s["truncation_rate"], 1 / 3) and math.isclose(s["accuracy"], 1 / 3)


@pytest.mark.slow
def test_cli_sample(tmp_path, tiny_model_dir):
    from skillfactory.cli import app

    out = tmp_path / "out"
    args = ["sample", "--model", str(tiny_model_dir), "--task", "countdown", "--param", "num_args=3", "-n", "2",
            "--per-variant", "2", "--seed", "0", "--out", str(out), "--max-new-tokens", "8", "--batch-size", "16"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4 * 2 and all(r["question"]["params"]["num_args"] == 3 for r in rows)
    cfg = (out / "config.yaml").read_text()
    assert "batch_size: 16" in cfg and "max_new_tokens: 8" in cfg
    assert "sampled 16 responses" in res.output


@pytest.mark.slow
def test_cli_config_file_overrides_and_errors(tmp_path, tiny_model_dir):
    from skillfactory.cli import app
    from skillfactory.errors import SkillFactoryError

    recipe = tmp_path / "sample.yaml"
    recipe.write_text(f"model: {tiny_model_dir}\ntask: countdown\nparams: {{num_args: 3}}\nn: 1\nper_variant: 1\n"
                      f"variants: [original, rephrase]\nmax_new_tokens: 4\nout: {tmp_path / 'o'}\n")
    res = CliRunner().invoke(app, ["sample", "--config", str(recipe), "--set", "per_variant=3", "--seed", "2"])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(tmp_path / "o" / "samples.jsonl", Sample)
    assert len(rows) == 1 * 2 * 3 and {r.variant for r in rows} == {"original", "rephrase"}
    res = CliRunner().invoke(app, ["sample", "--config", str(recipe), "--model", str(tmp_path / "nope"),
                                   "--out", str(tmp_path / "o2")])
    assert isinstance(res.exception, SkillFactoryError) and "does not exist" in str(res.exception)
    res = CliRunner().invoke(app, ["sample", "--config", str(recipe), "--set", "per_variant=0"])
    assert isinstance(res.exception, SkillFactoryError) and "per_variant" in str(res.exception)
