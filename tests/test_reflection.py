"""The reflection stage: exact prompt, verdict parsing and keeping, statistics, skips, resume, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from skillfactory.generation.base import Completion
from skillfactory.prompting import reflection_prompt
from skillfactory.records import Reflection, Sample, read_jsonl, write_jsonl
from skillfactory.reflection import ReflectConfig, reflect, resolve_model
from skillfactory.sampling import SampleConfig, StageError, sample
from skillfactory.tasks import get_task, task_for

VERDICTS = ["<verdict>Correct</verdict>", "Looks wrong. <verdict>incorrect</verdict>", "no verdict at all",
            "<verdict>Correct</verdict> or <verdict>Incorrect</verdict>"]


def make_samples(path: Path, n_questions: int = 3, skipped: int = 1) -> list[Sample]:
    """Samples whose correctness alternates, the last ``skipped`` ones skipped in sampling."""
    task = get_task("countdown", num_args=3)
    out = []
    for k, q in enumerate(task.generate(n_questions, seed=0)):
        for v, variant in enumerate(("original", "rephrase")):
            correct = (k + v) % 2 == 0
            text = f"<answer>{q.gold if correct else '1 + 1'}</answer>"
            out.append(Sample(question=q, variant=variant, index=0, prompt=task.prompt(q, variant), text=text,
                              extracted=q.gold if correct else "1 + 1", correct=correct,
                              why="ok" if correct else "wrong_value", n_tokens=4, finish_reason="stop"))
    for s in out[len(out) - skipped:]:
        out[out.index(s)] = s.model_copy(update={"finish_reason": "skipped", "skip_reason": "too long", "text": ""})
    write_jsonl(path, out)
    return out


class CycleBackend:
    """Reflection j of every sample says VERDICTS[j % 4]; records the prompts it was given."""

    name = "cycle"

    def __init__(self):
        self.prompts: list[str] = []

    def count_tokens(self, text):
        return len(text.split())

    def generate(self, requests, params, progress=None):
        self.prompts += [r.messages[-1]["content"] for r in requests]
        return [[Completion(VERDICTS[j % 4], 5, "stop") for j in range(params.n)] for _ in requests]


def test_prompt_verdicts_kept_and_statistics(tmp_path):
    samples = make_samples(tmp_path / "s" / "samples.jsonl")
    backend = CycleBackend()
    cfg = ReflectConfig(model="m", backend="hf", samples=str(tmp_path / "s" / "samples.jsonl"), per_sample=4,
                        out=str(tmp_path / "r"))
    summary = reflect(cfg, backend=backend, quiet=True)

    live = [s for s in samples if s.finish_reason != "skipped"]
    assert sorted(backend.prompts) == sorted(reflection_prompt(task_for(s.question).statement(s.question), s.text)
                                             for s in live)
    refl = read_jsonl(tmp_path / "r" / "reflections.jsonl", Reflection)
    assert len(refl) == 4 * len(live) and len({r.id for r in refl}) == len(refl)
    truth = {s.id: s.correct for s in live}
    for r in refl:
        expected = {0: True, 1: False}.get(r.index)  # 2: no verdict, 3: two verdicts -> invalid
        assert r.verdict is expected and r.truth == truth[r.sample_id]
        assert r.kept == (expected is not None and expected == r.truth)

    # statistics, recomputed here from the records
    valid = [r for r in refl if r.verdict is not None]
    tp = sum(r.verdict and r.truth for r in valid)
    fp = sum(r.verdict and not r.truth for r in valid)
    fn = sum(not r.verdict and r.truth for r in valid)
    a = summary["all"]
    assert a["precision"] == pytest.approx(tp / (tp + fp)) and a["recall"] == pytest.approx(tp / (tp + fn))
    assert a["invalid_rate"] == pytest.approx(0.5)
    assert a["samples_with_kept"] == 1.0  # each sample got one Correct and one Incorrect verdict
    assert set(summary["per_variant"]) == {"original", "rephrase"} and set(summary["per_task"]) == {"countdown"}
    assert sum(v["reflections"] for v in summary["per_variant"].values()) == len(refl)
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == summary


def test_default_model_is_the_sampling_model(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "config.yaml").write_text(yaml.safe_dump(
        {"model": "/models/base", "backend": "openai", "backend_options": {"base_url": "http://x/v1"}}))
    cfg = resolve_model(ReflectConfig(samples=str(tmp_path / "s" / "samples.jsonl"), out="o"))
    assert (cfg.model, cfg.backend, cfg.backend_options) == ("/models/base", "openai", {"base_url": "http://x/v1"})
    other = resolve_model(ReflectConfig(model="/models/judge", samples=str(tmp_path / "s" / "samples.jsonl"), out="o"))
    assert (other.model, other.backend, other.backend_options) == ("/models/judge", "hf", {})
    with pytest.raises(StageError, match="--model"):
        resolve_model(ReflectConfig(samples=str(tmp_path / "nowhere" / "samples.jsonl"), out="o"))


@pytest.fixture(scope="module")
def sampled(tiny_model_dir, tmp_path_factory):
    from skillfactory.generation import get_backend

    backend = get_backend("hf", str(tiny_model_dir), batch_size=16)
    out = tmp_path_factory.mktemp("sampled")
    sample(SampleConfig(model=str(tiny_model_dir), task="countdown", params={"num_args": 3}, n=2, per_variant=1,
                        max_new_tokens=8, out=str(out)), backend=backend, quiet=True)
    return out / "samples.jsonl", backend


def rcfg(samples_path, out, **kw):
    return ReflectConfig(**{"samples": str(samples_path), "per_sample": 2, "max_new_tokens": 8, "out": str(out), **kw})


def test_real_model_counts_determinism_and_resume(tmp_path, sampled):
    samples_path, backend = sampled
    reflect(rcfg(samples_path, tmp_path / "a"), backend=backend, quiet=True)
    reflect(rcfg(samples_path, tmp_path / "b"), backend=backend, quiet=True)
    a = (tmp_path / "a" / "reflections.jsonl").read_bytes()
    assert a == (tmp_path / "b" / "reflections.jsonl").read_bytes()
    assert len(a.splitlines()) == 2 * 4 * 2
    cfg = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    assert cfg["model"] == yaml.safe_load((samples_path.parent / "config.yaml").read_text())["model"]

    class CrashAfterOne:
        name, calls = "crash", 0

        def count_tokens(self, text):
            return backend.count_tokens(text)

        def generate(self, requests, params, progress=None):
            if self.calls:
                raise KeyboardInterrupt
            self.calls += 1
            return backend.generate(requests, params, progress)

    with pytest.raises(KeyboardInterrupt):
        reflect(rcfg(samples_path, tmp_path / "c", chunk_size=4), backend=CrashAfterOne(), quiet=True)
    assert 0 < len(read_jsonl(tmp_path / "c" / "reflections.jsonl")) < 16
    reflect(rcfg(samples_path, tmp_path / "c", chunk_size=4), backend=backend, quiet=True)
    full = tmp_path / "d"
    reflect(rcfg(samples_path, full, chunk_size=4), backend=backend, quiet=True)
    assert sorted((tmp_path / "c" / "reflections.jsonl").read_text().splitlines()) == \
        sorted((full / "reflections.jsonl").read_text().splitlines())


def test_missing_samples_file_is_a_one_line_error(tmp_path):
    with pytest.raises(StageError, match="samples file not found"):
        reflect(rcfg(tmp_path / "none.jsonl", tmp_path / "r", model="m"), quiet=True)


@pytest.mark.slow
def test_cli_reflect(tmp_path, sampled):
    from skillfactory.cli import app

    samples_path, _ = sampled
    out = tmp_path / "out2"
    res = CliRunner().invoke(app, ["reflect", "--samples", str(samples_path), "--per-sample", "2", "--seed", "0",
                                   "--out", str(out), "--max-new-tokens", "8"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (out / "reflections.jsonl").read_text().splitlines()]
    assert len(rows) == 8 * 2 and {r["index"] for r in rows} == {0, 1}


def test_solved_only_skips_questions_without_a_correct_sample(tmp_path):
    samples = make_samples(tmp_path / "s" / "samples.jsonl", skipped=0)
    unsolved = samples[0].question.id
    samples = [s.model_copy(update={"correct": False, "why": "wrong_value"}) if s.question.id == unsolved else s
               for s in samples]
    write_jsonl(tmp_path / "s" / "samples.jsonl", samples)
    backend = CycleBackend()
    cfg = ReflectConfig(model="m", backend="hf", samples=str(tmp_path / "s" / "samples.jsonl"), per_sample=2,
                        solved_only=True, out=str(tmp_path / "r"))
    reflect(cfg, backend=backend, quiet=True)
    refl = read_jsonl(tmp_path / "r" / "reflections.jsonl", Reflection)
    assert {r.question_id for r in refl} == {s.question.id for s in samples} - {unsolved}
    assert len(refl) == 2 * sum(s.question.id != unsolved for s in samples)
