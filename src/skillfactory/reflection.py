"""The reflection stage: the model checks its own samples and ends with a verdict.

    >>> cfg = ReflectConfig(samples="runs/s/samples.jsonl", per_sample=4, out="runs/r")
    >>> summary = reflect(cfg)           # runs/r/reflections.jsonl, summary.json, manifest.json

For each sample, ``per_sample`` reflections from the reflection model - by default the same model and backend
that wrote the samples (read from the sampling folder's config.yaml): self-distillation, no stronger teacher.
The user turn is exactly ``prompting.reflection_prompt(task.statement(question), sample.text)``. A reflection
is kept when its single parseable verdict equals the verifier's truth; the agreement between verdicts and
truth (precision / recall / F1, positive class = "Correct") is the stage's key diagnostic. Samples that were
skipped in sampling are not reflected on. Resumable like sampling (``generation.runner``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from skillfactory.artifacts import write_config, write_manifest
from skillfactory.generation.base import Backend, GenerationRequest, SamplingParams
from skillfactory.generation.runner import ExecutorConfig, Unit, backend_factory, open_executor, run_units
from skillfactory.locking import locks_folder
from skillfactory.prompting import parse_verdict, reflection_prompt
from skillfactory.records import JsonlAppender, Reflection, Sample, atomic_write_text, iter_jsonl, read_jsonl
from skillfactory.sampling import StageError, check_resume_config
from skillfactory.tasks import Task, task_for


class ReflectConfig(BaseModel):
    """Settings of ``skillfactory reflect``; every field can come from YAML or ``--set key=value``."""

    model_config = ConfigDict(extra="forbid")

    model: str = ""  # reflection model; "" = the model that wrote the samples (from their folder's config.yaml)
    backend: str = ""  # "" = the sampling run's backend (else hf)
    backend_options: dict[str, Any] = Field(default_factory=dict)
    samples: str  # path to a samples.jsonl written by the sampling stage
    per_sample: int = Field(4, ge=1)  # reflections per sample
    seed: int = 0
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    chunk_size: int = Field(512, ge=1)  # completions per chunk; part of the resume contract
    # Reflect only on samples of questions with at least one correct sample. The others cannot yield a trace
    # (every trace format needs a correct attempt), so their reflections would serve the verdict
    # diagnostics only; on a weak model that is most of the compute.
    solved_only: bool = False
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)  # local | ray replicas; same output either way
    out: str

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(n=self.per_sample, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_new_tokens=self.max_new_tokens, seed=self.seed)


_RESUME_FIELDS = ("model", "backend", "samples", "per_sample", "seed", "temperature", "top_p", "top_k",
                  "max_new_tokens", "chunk_size", "solved_only")


def resolve_model(cfg: ReflectConfig) -> ReflectConfig:
    """Fill an empty ``model``/``backend`` (and backend options) from the sampling run that wrote the samples."""
    if cfg.model and cfg.backend:
        return cfg
    saved = Path(cfg.samples).parent / "config.yaml"
    run = (yaml.safe_load(saved.read_text()) or {}) if saved.exists() else {}
    model = cfg.model or run.get("model")
    if not model:
        raise StageError(f"no reflection model: give --model (no sampling config.yaml beside {cfg.samples})")
    same = not cfg.model or cfg.model == run.get("model")
    backend = cfg.backend or (run.get("backend", "hf") if same else "hf")
    options = cfg.backend_options or (run.get("backend_options", {}) if same and backend == run.get("backend") else {})
    return cfg.model_copy(update={"model": model, "backend": backend, "backend_options": options})


@locks_folder("reflect")
def reflect(cfg: ReflectConfig, backend: Backend | None = None, *, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) the reflection stage; returns the summary also written to ``OUT/summary.json``."""
    if not Path(cfg.samples).exists():
        raise StageError(f"{cfg.samples}: samples file not found (run `skillfactory sample` first)")
    cfg = resolve_model(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    check_resume_config(out, cfg, _RESUME_FIELDS)
    write_config(out, cfg)
    samples = list({s.id: s for s in read_jsonl(cfg.samples, Sample)}.values())
    if cfg.solved_only:
        solved = {s.question.id for s in samples if s.correct}
        samples = [s for s in samples if s.question.id in solved]
    tasks: dict[str, Task] = {}
    units = []
    for s in samples:
        if s.finish_reason == "skipped":
            continue
        task = tasks.setdefault(json.dumps([s.question.task, s.question.params], sort_keys=True), task_for(s.question))
        prompt = reflection_prompt(task.statement(s.question), s.text)
        units.append(Unit(s.id, GenerationRequest([{"role": "user", "content": prompt}]), s))
    path = out / "reflections.jsonl"
    done = {(r.sample_id, r.index) for r in iter_jsonl(path, Reflection)} if path.exists() else set()
    params = cfg.sampling_params()
    if len(done) < len(units) * params.n:
        factory = backend_factory(cfg.backend, cfg.model, cfg.backend_options)
        with open_executor(cfg.executor, factory, cfg.backend, cfg.backend_options, backend_object=backend) as ex, \
                JsonlAppender(path) as w:
            for unit, index, comp in run_units(ex, units, params, done, cfg.chunk_size,
                                               label="reflecting", quiet=quiet):
                s: Sample = unit.payload
                verdict = parse_verdict(comp.text) if comp.finish_reason != "skipped" else None
                w.write(Reflection(sample_id=s.id, question_id=s.question.id, index=index, text=comp.text,
                                   verdict=verdict, truth=s.correct, kept=verdict is not None and verdict == s.correct,
                                   n_tokens=comp.n_tokens, finish_reason=comp.finish_reason,
                                   skip_reason=comp.skip_reason))
    reflections = list({r.id: r for r in iter_jsonl(path, Reflection)}.values())
    summary = summarize_reflections(samples, reflections)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_manifest(out, "reflect", config=cfg, inputs={"model": cfg.model, "samples": str(cfg.samples)},
                   counts={"samples": len(units), "reflections": len(reflections), "kept": summary["all"]["kept"]},
                   seed=cfg.seed)
    if not quiet:
        from rich.console import Console

        a = summary["all"]
        Console().print(f"reflected {len(reflections)} times on {len(units)} samples: verdict F1 {a['f1']:.2f}, "
                        f"invalid {a['invalid_rate']:.1%}, samples with a kept reflection "
                        f"{a['samples_with_kept']:.1%} -> {path}", highlight=False, soft_wrap=True)
    return summary


def verdict_stats(pairs: Sequence[tuple[Reflection, Sample]]) -> dict[str, Any]:
    """Verdict agreement with the verifier (positive class = Correct); invalid verdicts count as invalid only."""
    valid = [(r, s) for r, s in pairs if r.verdict is not None]
    tp = sum(r.verdict and s.correct for r, s in valid)
    fp = sum(r.verdict and not s.correct for r, s in valid)
    fn = sum((not r.verdict) and s.correct for r, s in valid)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    sample_ids = {s.id for _, s in pairs}
    kept_ids = {s.id for r, s in pairs if r.kept}
    return {
        "reflections": len(pairs),
        "samples": len(sample_ids),
        "precision": precision, "recall": recall, "f1": f1,
        "agreement": sum(r.kept for r, _ in valid) / len(valid) if valid else 0.0,
        "invalid_rate": 1 - len(valid) / len(pairs) if pairs else 0.0,
        "kept": sum(r.kept for r, _ in pairs),
        "samples_with_kept": len(kept_ids) / len(sample_ids) if sample_ids else 0.0,
    }


def summarize_reflections(samples: Sequence[Sample], reflections: Sequence[Reflection]) -> dict[str, Any]:
    """Verdict statistics overall, per task and per prompt variant."""
    by_id = {s.id: s for s in samples}
    pairs = [(r, by_id[r.sample_id]) for r in reflections if r.sample_id in by_id]
    per_task: dict[str, list] = defaultdict(list)
    per_variant: dict[str, list] = defaultdict(list)
    for r, s in pairs:
        per_task[s.question.task].append((r, s))
        per_variant[s.variant].append((r, s))
    return {
        "all": verdict_stats(pairs),
        "per_task": {k: verdict_stats(v) for k, v in sorted(per_task.items())},
        "per_variant": {k: verdict_stats(v) for k, v in sorted(per_variant.items())},
    }
