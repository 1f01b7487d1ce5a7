"""The sampling stage: each question in each prompt variant, ``per_variant`` times, verified.

    >>> cfg = SampleConfig(model="toy/", task="countdown", params={"num_args": 3}, n=20, per_variant=2, out="runs/s")
    >>> summary = sample(cfg)            # runs/s/{questions,samples}.jsonl, summary.json, manifest.json

This is where most compute goes, so it is built to be stopped and restarted: every finished completion is
appended (and flushed) to ``samples.jsonl`` at once, and a re-run with the same ``out`` reads the finished
(question, variant, index) triples and generates only the rest - the same text an uninterrupted run would
have written (see ``generation.runner`` for why). A re-run with different settings in the same folder is
refused rather than mixing two runs.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from skillfactory.artifacts import write_config, write_manifest
from skillfactory.errors import SkillFactoryError
from skillfactory.generation.base import Backend, GenerationRequest, SamplingParams
from skillfactory.generation.runner import ExecutorConfig, Unit, backend_factory, open_executor, run_units
from skillfactory.locking import locks_folder
from skillfactory.prompting import VARIANTS
from skillfactory.records import JsonlAppender, Question, Sample, atomic_write_text, iter_jsonl, read_jsonl, write_jsonl
from skillfactory.tasks import Task, get_task, task_for


class StageError(SkillFactoryError, ValueError):
    """A stage folder or input that cannot be used as asked (the message says what to change)."""


class SampleConfig(BaseModel):
    """Settings of ``skillfactory sample``; every field can come from YAML or ``--set key=value``."""

    model_config = ConfigDict(extra="forbid")

    model: str  # model folder (hf, vllm) or served model name (openai)
    backend: str = "hf"  # hf | vllm | openai
    backend_options: dict[str, Any] = Field(default_factory=dict)  # e.g. batch_size, base_url, tensor_parallel_size
    task: str = "countdown"  # registry name or dotted path of a Task subclass
    params: dict[str, Any] = Field(default_factory=dict)  # task parameters, e.g. {num_args: 3}
    n: int = Field(100, ge=1)  # questions to generate
    seed: int = 0  # seeds the questions and the sampling
    split: str = "train"
    per_variant: int = Field(16, ge=1)  # samples per question and variant (published: 16 x 4 variants = 64)
    variants: list[str] = Field(default_factory=lambda: list(VARIANTS))
    temperature: float = Field(1.0, ge=0)  # 1.0: the model's own distribution; 0 = greedy
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)  # 0 = off
    max_new_tokens: int = Field(512, ge=1)
    stop: list[str] = Field(default_factory=list)  # extra stop strings (EOS always stops)
    chunk_size: int = Field(512, ge=1)  # completions generated (and written) per chunk; part of the resume contract
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)  # local | ray replicas; same output either way
    out: str

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, v: list[str]) -> list[str]:
        bad = [x for x in v if x not in VARIANTS]
        if bad or not v:
            raise ValueError(f"unknown or empty variants {bad}; choose from {', '.join(VARIANTS)}")
        if len(set(v)) != len(v):
            raise ValueError("variants are listed twice")
        return v

    def sampling_params(self) -> SamplingParams:
        return SamplingParams(n=self.per_variant, temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                              max_new_tokens=self.max_new_tokens, stop=tuple(self.stop), seed=self.seed)


#: Fields that change what is generated: a resumed folder must agree on all of them.
_RESUME_FIELDS = ("model", "backend", "task", "params", "n", "seed", "split", "per_variant", "variants",
                  "temperature", "top_p", "top_k", "max_new_tokens", "stop", "chunk_size")


def check_resume_config(out: Path, cfg: BaseModel, fields: Sequence[str]) -> None:
    """Refuse to resume a folder whose saved config differs from ``cfg`` in a field that changes the output."""
    path = out / "config.yaml"
    if not path.exists():
        return
    old = yaml.safe_load(path.read_text()) or {}
    new = cfg.model_dump(mode="json")
    for f in fields:
        if f in old and old[f] != new[f]:
            raise StageError(f"{out} holds a run with {f}={old[f]!r}, not {new[f]!r}: use a new --out "
                             f"(or delete {out}) to start over")


def _load_questions(cfg: SampleConfig, out: Path, questions: Sequence[Question] | None) -> list[Question]:
    qs = list(questions) if questions is not None else get_task(cfg.task, **cfg.params).generate(cfg.n, cfg.seed, cfg.split)
    if len({q.id for q in qs}) != len(qs):
        raise StageError("the questions have duplicate ids")
    path = out / "questions.jsonl"
    if path.exists():
        old = [q.id for q in read_jsonl(path, Question)]
        if old != [q.id for q in qs]:
            raise StageError(f"{path} holds other questions than this run's: use a new --out (or delete {out})")
    else:
        write_jsonl(path, qs)
    return qs


@locks_folder("sample")
def sample(cfg: SampleConfig, questions: Sequence[Question] | None = None, backend: Backend | None = None,
           *, quiet: bool = False) -> dict[str, Any]:
    """Run (or resume) the sampling stage; returns the summary also written to ``OUT/summary.json``."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    check_resume_config(out, cfg, _RESUME_FIELDS)
    qs = _load_questions(cfg, out, questions)
    write_config(out, cfg)
    tasks: dict[str, Task] = {}
    units = []
    for q in qs:
        key = json.dumps([q.task, q.params], sort_keys=True)
        task = tasks.setdefault(key, task_for(q))
        for v in cfg.variants:
            prompt = task.prompt(q, v)
            units.append(Unit((q.id, v), GenerationRequest([{"role": "user", "content": prompt}]), (q, task, prompt)))
    samples_path = out / "samples.jsonl"
    done = {(s.question.id, s.variant, s.index) for s in iter_jsonl(samples_path, Sample)} if samples_path.exists() else set()
    done_atoms = {((qid, v), i) for qid, v, i in done}
    params = cfg.sampling_params()
    if len(done_atoms) < len(units) * params.n:
        factory = backend_factory(cfg.backend, cfg.model, cfg.backend_options)
        with open_executor(cfg.executor, factory, cfg.backend, cfg.backend_options, backend_object=backend) as ex, \
                JsonlAppender(samples_path) as w:
            for unit, index, comp in run_units(ex, units, params, done_atoms, cfg.chunk_size,
                                               label="sampling", quiet=quiet):
                q, task, prompt = unit.payload
                w.write(_to_sample(q, unit.key[1], index, prompt, comp, task))
    samples = list({s.id: s for s in iter_jsonl(samples_path, Sample)}.values())
    summary = summarize_samples(samples)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_manifest(out, "sample", config=cfg, inputs={"model": cfg.model, "task": cfg.task},
                   counts={"questions": len(qs), "samples": len(samples), "skipped": summary["skipped"]}, seed=cfg.seed)
    if not quiet:
        from rich.console import Console

        Console().print(f"sampled {len(samples)} responses to {len(qs)} questions: accuracy "
                        f"{summary['accuracy']:.1%}, truncated {summary['truncation_rate']:.1%}, "
                        f"skipped {summary['skipped']} -> {samples_path}", highlight=False, soft_wrap=True)
    return summary


def _to_sample(q: Question, variant: str, index: int, prompt: str, comp: Any, task: Task) -> Sample:
    if comp.finish_reason == "skipped":
        extracted, correct, why = None, False, "skipped"
    else:
        check = task.check(q, comp.text)
        extracted, correct, why = task.extract_answer(comp.text), check.correct, check.reason
    return Sample(question=q, variant=variant, index=index, prompt=prompt, text=comp.text, extracted=extracted,
                  correct=correct, why=why, n_tokens=comp.n_tokens, finish_reason=comp.finish_reason,
                  skip_reason=comp.skip_reason)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    return 1.0 if n - c < k else 1.0 - math.comb(n - c, k) / math.comb(n, k)


def summarize_samples(samples: Sequence[Sample]) -> dict[str, Any]:
    """Accuracy (overall and per variant), unbiased pass@k, truncation rate and skips, over non-skipped samples."""
    valid = [s for s in samples if s.finish_reason != "skipped"]
    per_variant: dict[str, list[bool]] = defaultdict(list)
    per_question: dict[str, list[bool]] = defaultdict(list)
    for s in valid:
        per_variant[s.variant].append(s.correct)
        per_question[s.question.id].append(s.correct)
    k_max = min((len(v) for v in per_question.values()), default=0)
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64, 128, 256) if k <= k_max]
    if k_max and k_max not in ks:
        ks.append(k_max)
    pass_k = {f"pass@{k}": sum(pass_at_k(len(v), sum(v), k) for v in per_question.values()) / len(per_question)
              for k in ks}
    return {
        "samples": len(samples),
        "questions": len({s.question.id for s in samples}),
        "accuracy": sum(s.correct for s in valid) / len(valid) if valid else 0.0,
        "accuracy_per_variant": {v: sum(x) / len(x) for v, x in sorted(per_variant.items())},
        **pass_k,
        "truncation_rate": sum(s.finish_reason == "length" for s in valid) / len(valid) if valid else 0.0,
        "skipped": len(samples) - len(valid),
        "mean_tokens": sum(s.n_tokens for s in valid) / len(valid) if valid else 0.0,
        "why": dict(Counter(s.why for s in samples).most_common()),
    }
