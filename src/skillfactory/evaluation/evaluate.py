"""The evaluate stage: run a model on a suite, score every sample, and write metrics with intervals.

Outputs in ``OUT/``:
- ``samples.jsonl``: one :class:`~skillfactory.evaluation.scoring.EvalSample` per scored completion (task,
  params, question id, text, extracted answer, correct, why, tokens, skill usage), appended per batch;
- ``budget_forcing.jsonl``: the same records for budget-forced answers (``mode`` "count" or "tokens");
- ``questions.jsonl``: the test questions; ``results.json``: metrics per entry (accuracy + 95% interval,
  pass@k, length, skill usage, per-question counts for paired comparisons) and budget-forcing curves;
  ``summary.json``, ``manifest.json``, ``config.yaml``, and ``eval_fingerprint.json`` (the settings the
  saved samples depend on, checked on resume).

Resume: a unit of work is (entry, mode, budget, question, sample index). A re-run reads the finished units
(a torn last line from a crash is dropped) and generates only the rest; ``results.json`` is recomputed from
all saved records, so a resumed run gives the same results as an uninterrupted one. A re-run with settings
that change the samples (model, seed, temperature, ...) into the same folder is refused rather than mixed.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skillfactory.artifacts import write_config, write_manifest
from skillfactory.console import StepProgress
from skillfactory.errors import SkillFactoryError
from skillfactory.evaluation.budget_forcing import BudgetForcingConfig, budget_force
from skillfactory.evaluation.metrics import accuracy_summary, default_ks, mean_pass_at_k
from skillfactory.evaluation.scoring import EvalSample, score, task_of
from skillfactory.evaluation.skills import aggregate_usage
from skillfactory.evaluation.suite import ResolvedEntry, Suite, cap_warning, load_suite
from skillfactory.generation.base import Backend, GenerationRequest, SamplingParams
from skillfactory.generation.runner import ExecutorConfig, open_executor
from skillfactory.locking import locks_folder
from skillfactory.prompting import VARIANTS
from skillfactory.records import JsonlAppender, Question, atomic_write_text, iter_jsonl, write_jsonl
from skillfactory.tasks import get_task

log = logging.getLogger(__name__)


class EvalError(SkillFactoryError, ValueError):
    """An evaluation that cannot run as configured."""


class EvalConfig(BaseModel):
    """Settings of ``skillfactory eval``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str  # model path (hf, vllm) or served name (openai)
    label: str = "model"  # the name this model gets in reports: base, rl_only, skillfactory, sft_only, ...
    backend: str = "hf"  # registry name, or "module:factory" for a user backend
    backend_options: dict[str, Any] = Field(default_factory=dict)
    suite: str | list[dict[str, Any]] | dict[str, Any] = "default"  # YAML path, packaged name, or inline entries
    seed: int = 0  # question seed and sampling seed
    #: which questions: "test" (what reports score) or "validation" (disjoint; for choosing settings)
    split: Literal["test", "validation"] = "test"
    temperature: float = Field(0.7, ge=0)  # > 0 so that pass@k and per-question accuracy mean something
    top_p: float = Field(1.0, gt=0, le=1)
    variant: str = "original"  # prompt variant of the user turn
    interval: Literal["bootstrap", "wilson"] = "bootstrap"  # see metrics.py for why bootstrap over questions
    bootstrap_resamples: int = Field(2000, ge=100)
    batch_questions: int = Field(32, ge=1)  # questions per backend call; results are appended after each
    budget_forcing: BudgetForcingConfig = Field(default_factory=BudgetForcingConfig)
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)  # local | ray replicas; same samples either way
    out: str


# ---- backend ----------------------------------------------------------------------------------------------------

def make_backend(cfg: EvalConfig) -> Backend:
    """Build the configured backend: a registry name, or ``module:factory`` called as ``factory(model, **opts)``."""
    if ":" in cfg.backend:
        module, _, attr = cfg.backend.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise EvalError(f"backend {cfg.backend!r}: cannot import ({e})") from None
        return factory(cfg.model, **cfg.backend_options)
    from skillfactory.generation import get_backend

    return get_backend(cfg.backend, cfg.model, **cfg.backend_options)


# ---- resume guard -----------------------------------------------------------------------------------------------

def _fingerprint(cfg: EvalConfig, suite: Suite) -> dict[str, Any]:
    """What the saved samples depend on; a different fingerprint in the same folder would mix results."""
    bf = cfg.budget_forcing
    return {
        "model": cfg.model, "seed": cfg.seed, "temperature": cfg.temperature,
        "top_p": cfg.top_p, "variant": cfg.variant,
        "entries": {e.label: {"task": e.task, "params": e.params, "max_new_tokens": e.max_new_tokens,
                              "temperature": e.temperature} for e in suite.entries},
        "forcing": {"continuation": bf.continuation, "end_marker": bf.end_marker,
                    "answer_opening": bf.answer_opening, "answer_tokens": bf.answer_tokens,
                    "max_forced": bf.max_forced},
        # only when not the default, so folders evaluated before the split existed still resume
        **({"split": cfg.split} if cfg.split != "test" else {}),
    }


def _check_fingerprint(out: Path, fp: dict[str, Any]) -> None:
    path = out / "eval_fingerprint.json"
    if path.exists():
        old = json.loads(path.read_text())
        changed = sorted(k for k in set(old) | set(fp) if k != "entries" and old.get(k) != fp.get(k))
        old_e, new_e = old.get("entries", {}), fp["entries"]
        changed += [f"entries.{k}" for k in sorted(set(old_e) & set(new_e)) if old_e[k] != new_e[k]]
        if changed:
            raise EvalError(f"{out} holds an evaluation made with other settings (changed: {', '.join(changed)}); "
                            "use another --out or delete that folder")
        merged = {**old, "entries": {**old_e, **new_e}}
    else:
        merged = fp
    atomic_write_text(path, json.dumps(merged, indent=2, sort_keys=True) + "\n")


# ---- the stage --------------------------------------------------------------------------------------------------

@locks_folder("eval")
def evaluate(cfg: EvalConfig, backend: Backend | None = None) -> dict[str, Any]:
    """Evaluate ``cfg.model`` on ``cfg.suite``; returns the results dict (also written to OUT/results.json)."""
    from rich.console import Console
    from rich.markup import escape

    if cfg.variant not in VARIANTS:
        raise EvalError(f"variant {cfg.variant!r} is unknown; expected one of {', '.join(VARIANTS)}")
    suite = load_suite(cfg.suite)
    bf_entries = _forcing_entries(cfg, suite)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _check_fingerprint(out, _fingerprint(cfg, suite))
    write_config(out, cfg)

    questions = {e.label: get_task(e.task, **e.params).generate(e.n, seed=cfg.seed, split=cfg.split)
                 for e in suite.entries}
    all_q = {q.id: q for qs in questions.values() for q in qs}
    write_jsonl(out / "questions.jsonl", [all_q[k] for k in sorted(all_q)])
    plain_path, bf_path = out / "samples.jsonl", out / "budget_forcing.jsonl"
    done = _done_keys(plain_path) | _done_keys(bf_path)

    plan = _plan(cfg, suite, questions, bf_entries, done)
    total = sum(len(units) for _, _, _, units in plan)
    console = Console(stderr=True)
    warning = cap_warning(suite, cfg.model)  # a cap below the training cap cuts multi-attempt answers
    if warning:
        console.print(f"[yellow]warning[/]: {escape(warning)}", soft_wrap=True)
    with StepProgress(f"eval {cfg.label}", total, unit="samples", console=console) as bar:
        # every chunk of the plan is one job; an executor with several replicas runs them side by side and
        # yields them in plan order, so the files are written as one process writes them
        jobs = [(cfg, entry, mode, budget, chunk) for entry, mode, budget, units in plan
                for chunk in _chunks(units, cfg.batch_questions * entry.samples)]

        def describe(k: int, done: int, extra: str = "") -> None:
            """The bar at ``done`` samples, naming the job now running (suite entry, mode, budget)."""
            note = None
            if k < len(jobs):
                _, entry, mode, budget, _ = jobs[k]
                note = f"{entry.label} {mode}{'' if budget is None else budget}" + (f" ({extra})" if extra else "")
            bar.update(done, note=note)

        done = 0
        describe(0, done)
        if jobs:
            with open_executor(cfg.executor, functools.partial(make_backend, cfg), cfg.backend, cfg.backend_options,
                               backend_object=backend) as ex:
                for k, records in enumerate(ex.map(_chunk_job, jobs)):
                    _, _, mode, _, chunk = jobs[k]
                    with JsonlAppender(plain_path if mode == "plain" else bf_path) as w:
                        for r in records:
                            w.write(r)
                    done += len(chunk)
                    describe(k + 1, done, ex.describe())

    plain = list(_read(plain_path))
    forced = list(_read(bf_path)) if bf_path.exists() else []
    results = compute_results(cfg, suite, plain, forced, bf_entries)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2, sort_keys=False) + "\n")
    summary = {
        "label": cfg.label, "model": cfg.model, "samples": len(plain), "budget_forcing_samples": len(forced),
        "generated_now": total,
        "accuracy": {e["label"]: round(e["accuracy"], 4) for e in results["entries"]},
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_manifest(out, "evaluate", config=cfg, inputs={"model": cfg.model},
                   counts={"samples": len(plain), "budget_forcing_samples": len(forced), "entries": len(suite.entries)},
                   seed=cfg.seed)
    acc = ", ".join(f"{k} {v:.3f}" for k, v in summary["accuracy"].items())
    console.print("[green]eval[/] " + escape(f"{cfg.label}: {len(plain)} samples scored ({total} generated now) -> "
                                              f"{out}/results.json; accuracy: {acc}"), highlight=False, soft_wrap=True)
    return results


def _forcing_entries(cfg: EvalConfig, suite: Suite) -> list[ResolvedEntry]:
    bf = cfg.budget_forcing
    if not bf.enabled:
        return []
    if not bf.entries:
        return list(suite.entries)
    labels = {e.label for e in suite.entries} | {e.task for e in suite.entries}
    unknown = [x for x in bf.entries if x not in labels]
    if unknown:
        raise EvalError(f"budget_forcing.entries: {', '.join(map(repr, unknown))} not in the suite "
                        f"(entries: {', '.join(e.label for e in suite.entries)})")
    return [e for e in suite.entries if e.label in bf.entries or e.task in bf.entries]


def _done_keys(path: Path) -> set[tuple]:
    return {r.key for r in _read(path)} if path.exists() else set()


def _read(path: Path) -> Iterable[EvalSample]:
    return iter_jsonl(path, EvalSample)


Unit = tuple[Question, int]  # (question, sample index)


def _plan(cfg: EvalConfig, suite: Suite, questions: dict[str, list[Question]], bf_entries: list[ResolvedEntry],
          done: set[tuple]) -> list[tuple[ResolvedEntry, str, int | None, list[Unit]]]:
    plan = []
    for e in suite.entries:
        units = [(q, i) for q in questions[e.label] for i in range(e.samples)
                 if (e.label, "plain", None, q.id, i) not in done]
        plan.append((e, "plain", None, units))
    bf = cfg.budget_forcing
    for e in bf_entries:
        qs = questions[e.label][: bf.questions or e.n]
        samples = bf.samples or e.samples
        for mode, budgets in (("count", bf.budgets), ("tokens", bf.token_budgets)):
            for b in budgets:
                units = [(q, i) for q in qs for i in range(samples) if (e.label, mode, b, q.id, i) not in done]
                plan.append((e, mode, b, units))
    return [p for p in plan if p[3]]


def _chunks(units: list[Unit], size: int) -> Iterable[list[Unit]]:
    for i in range(0, len(units), size):
        yield units[i: i + size]


def _messages(cfg: EvalConfig, q: Question) -> tuple[str, list[dict[str, str]]]:
    prompt = task_of(q.task, q.params).prompt(q, cfg.variant)
    return prompt, [{"role": "user", "content": prompt}]


def _chunk_job(backend: Backend, job: tuple, progress: Any = None) -> list[EvalSample]:
    """One chunk of the plan, ``(cfg, entry, mode, budget, chunk)`` (module level, so a Ray replica can run it)."""
    cfg, entry, mode, budget, chunk = job
    return _run_chunk(cfg, backend, entry, mode, budget, chunk)


def _run_chunk(cfg: EvalConfig, backend: Backend, entry: ResolvedEntry, mode: str, budget: int | None,
               chunk: list[Unit]) -> list[EvalSample]:
    temperature = cfg.temperature if entry.temperature is None else entry.temperature
    if mode == "plain":
        # one request per question, n = the entry's samples; keep only the indices still missing
        by_q: dict[str, list[int]] = {}
        qmap: dict[str, Question] = {}
        for q, i in chunk:
            by_q.setdefault(q.id, []).append(i)
            qmap[q.id] = q
        ids = list(by_q)
        prompts = [_messages(cfg, qmap[k]) for k in ids]
        params = SamplingParams(n=entry.samples, temperature=temperature, top_p=cfg.top_p,
                                max_new_tokens=entry.max_new_tokens, seed=cfg.seed)
        outs = backend.generate([GenerationRequest(m) for _, m in prompts], params)
        records = []
        for k, (prompt, _), comps in zip(ids, prompts, outs):
            for i in by_q[k]:
                c = comps[i]
                records.append(score(entry, qmap[k], i, prompt, c.text, c.n_tokens, c.finish_reason, c.skip_reason))
        return records
    bf = cfg.budget_forcing
    prompts = [_messages(cfg, q) for q, _ in chunk]
    # a distinct seed per sample index: the same (question, index) always gets the same text
    results = []
    by_index: dict[int, list[int]] = {}
    for pos, (_, i) in enumerate(chunk):
        by_index.setdefault(i, []).append(pos)
    forced: dict[int, Any] = {}
    for i, positions in sorted(by_index.items()):
        params = SamplingParams(n=1, temperature=temperature, top_p=cfg.top_p, max_new_tokens=entry.max_new_tokens,
                                seed=cfg.seed * 1_000_003 + i * 101)
        outs = budget_force(backend, [prompts[p][1] for p in positions], params, bf,
                            max_forced=budget if mode == "count" else bf.max_forced,
                            token_budget=budget if mode == "tokens" else None)
        forced.update(zip(positions, outs))
    for pos, (q, i) in enumerate(chunk):
        r = forced[pos]
        info = {"forced": r.forced, "forced_answer": r.forced_answer, "closed_thinking": r.closed_thinking,
                "generated_tokens": r.generated_tokens}
        results.append(score(entry, q, i, prompts[pos][0], r.text, r.n_tokens, r.finish_reason, mode=mode,
                             budget=budget, forcing=info))
    return results


# ---- metrics ----------------------------------------------------------------------------------------------------

def _entry_metrics(cfg: EvalConfig, entry: ResolvedEntry, recs: list[EvalSample], seed_salt: int) -> dict[str, Any]:
    per_q: dict[str, list[int]] = {}
    for r in sorted(recs, key=lambda r: (r.question_id, r.index)):
        c = per_q.setdefault(r.question_id, [0, 0])
        c[0] += int(r.correct)
        c[1] += 1
    clusters = [tuple(v) for v in per_q.values()]
    acc = accuracy_summary(clusters, method=cfg.interval, resamples=cfg.bootstrap_resamples,
                           seed=cfg.seed * 7919 + seed_salt)
    n_min = min((n for _, n in clusters), default=0)
    counts = [(n, c) for c, n in clusters]
    reasons: dict[str, int] = {}
    for r in recs:
        reasons[r.why] = reasons.get(r.why, 0) + 1
    n = len(recs)
    return {
        **acc,
        "n_questions": len(per_q),
        "pass_at_k": {str(k): mean_pass_at_k(counts, k) for k in default_ks(n_min)},
        "mean_tokens": sum(r.n_tokens for r in recs) / n if n else None,
        "truncated_rate": sum(r.finish_reason == "length" for r in recs) / n if n else None,
        "skipped": sum(r.finish_reason == "skipped" for r in recs),
        "why": dict(sorted(reasons.items())),
        "skills": aggregate_usage([r.skills for r in recs]),
        "per_question": {k: v for k, v in sorted(per_q.items())},
    }


def compute_results(cfg: EvalConfig, suite: Suite, plain: list[EvalSample], forced: list[EvalSample],
                    bf_entries: list[ResolvedEntry]) -> dict[str, Any]:
    """Aggregate saved records into the results dict (a pure function of the records: resume-safe)."""
    by_entry: dict[str, list[EvalSample]] = {}
    for r in plain:
        by_entry.setdefault(r.entry, []).append(r)
    entries = []
    for pos, e in enumerate(suite.entries):
        head = {"label": e.label, "task": e.task, "params": e.params, "group": e.group, "difficulty": e.difficulty,
                "difficulty_value": e.difficulty_value, "samples_per_question": e.samples,
                "max_new_tokens": e.max_new_tokens}
        entries.append({**head, **_entry_metrics(cfg, e, by_entry.get(e.label, []), pos)})
    curves = []
    bf = cfg.budget_forcing
    for pos, e in enumerate(bf_entries):
        for mode, budgets in (("count", bf.budgets), ("tokens", bf.token_budgets)):
            points = []
            for b in budgets:
                recs = [r for r in forced if r.entry == e.label and r.mode == mode and r.budget == b]
                if not recs:
                    continue
                m = _entry_metrics(cfg, e, recs, 1000 + pos * 97)  # one seed per curve: equal data, equal interval
                points.append({
                    "budget": b, "accuracy": m["accuracy"], "ci": m["ci"], "n": m["n"],
                    "mean_tokens": m["mean_tokens"],
                    "mean_forced": sum(r.forcing["forced"] for r in recs) / len(recs),
                    "forced_answer_rate": sum(r.forcing["forced_answer"] for r in recs) / len(recs),
                    "closed_thinking_rate": sum(r.forcing["closed_thinking"] for r in recs) / len(recs),
                    "attempts_per_answer": m["skills"]["attempts_per_answer"],
                    "per_question": m["per_question"],
                })
            if points:
                noop = all(p["closed_thinking_rate"] == 0 for p in points)
                curves.append({"entry": e.label, "task": e.task, "group": e.group, "difficulty": e.difficulty,
                               "mode": mode, "points": points, "noop": noop,
                               "note": "the model never closed its thinking (no </think>): forcing was a no-op"
                               if noop else ""})
    return {
        "schema_version": 1,
        "label": cfg.label,
        "model": cfg.model,
        "suite": suite.name,
        "seed": cfg.seed,
        "temperature": cfg.temperature,
        "variant": cfg.variant,
        "interval": {"method": cfg.interval, "level": 0.95,
                     "resamples": cfg.bootstrap_resamples if cfg.interval == "bootstrap" else None,
                     "unit": "questions" if cfg.interval == "bootstrap" else "samples"},
        "entries": entries,
        "budget_forcing": {"enabled": bf.enabled, "continuation": bf.continuation, "curves": curves},
    }


__all__ = ["EvalConfig", "EvalError", "EvalSample", "compute_results", "evaluate", "make_backend", "score"]
