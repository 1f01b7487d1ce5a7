"""``skillfactory toy eval DIR``: does a base model have SkillFactory's premise, and nothing more?

Measures, on test-split questions:
- attempt accuracy per task and difficulty: pass@1 (mean over all samples) and pass@k (share of questions with
  at least one right sample among k, spread evenly over the 4 prompt variants);
- the share of answers that already show a skill (a ``<sample>``/``<reflect>`` block, a verdict, or more than one
  ``<answer>``) - should be ~0 for a base model;
- reflection: the model checks a random subset of its own attempts with the reflection stage's prompt; verdict
  agreement with the verifier, the invalid-verdict rate (not exactly one parseable verdict), and agreement on
  right and on wrong attempts separately (a model that always says "Correct" scores its pass@1 overall).
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skillfactory.errors import SkillFactoryError

_ANSWER = re.compile(r"<answer>", re.IGNORECASE)


class ToyEvalConfig(BaseModel):
    """What ``toy eval`` measures and how hard it samples."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str  # model folder
    questions: int = Field(32, ge=1)  # test questions per task and difficulty
    k: int = Field(16, ge=4)  # samples per question (spread over the 4 variants; rounded down to a multiple of 4)
    temperature: float = Field(1.0, ge=0)  # sampling temperature of attempts and reflections
    max_new_tokens: int = Field(256, ge=8)  # per attempt / reflection (3-digit column multiplication: ~160-210)
    reflections: int = Field(256, ge=0)  # own attempts to reflect on (random subset over all difficulties)
    countdown_sizes: list[int] = [2, 3, 4]
    multiplication_sizes: list[int] = [2, 3]
    countdown_params: dict | None = None  # None: the ones the toy model was built with (toy_build.json)
    batch_size: int = Field(128, ge=1)  # sequences in flight
    seed: int = 0


def _countdown_params(cfg: ToyEvalConfig) -> dict:
    if cfg.countdown_params is not None:
        return cfg.countdown_params
    from skillfactory.toy.presets import get_preset

    info = Path(cfg.model) / "toy_build.json"
    preset = json.loads(info.read_text()).get("preset", "tiny") if info.exists() else "tiny"
    try:
        return dict(get_preset(preset).corpus.countdown_params)
    except SkillFactoryError:
        return dict(get_preset("tiny").corpus.countdown_params)


def has_skill(text: str) -> bool:
    """An answer that already chains: a trace tag, a verdict, or more than one <answer>."""
    from skillfactory.evaluation.skills import count_skills

    c = count_skills(text)
    low = text.lower()
    return bool(c.attempts or c.reflections or c.verdicts or "<verdict>" in low or "<sample>" in low
                or "<reflect>" in low or len(_ANSWER.findall(text)) > 1)


def evaluate_toy(cfg: ToyEvalConfig, backend: Any = None, progress: Any = None) -> dict[str, Any]:
    """Run the measurements; returns a JSON-able dict (``rows`` per task/difficulty, ``reflection``, ``skill_share``)."""
    from skillfactory.generation import GenerationRequest, SamplingParams, get_backend
    from skillfactory.prompting import VARIANTS, parse_verdict, reflection_prompt
    from skillfactory.tasks import get_task

    t0 = time.time()
    backend = backend or get_backend("hf", model=cfg.model, batch_size=cfg.batch_size)
    per_variant = max(1, cfg.k // len(VARIANTS))
    k = per_variant * len(VARIANTS)
    cd = _countdown_params(cfg)
    specs = [("countdown", n, get_task("countdown", num_args=n, **cd)) for n in cfg.countdown_sizes]
    specs += [("multiplication", d, get_task("multiplication", digits=d)) for d in cfg.multiplication_sizes]
    requests, meta = [], []
    for name, size, task in specs:
        for q in task.generate(cfg.questions, seed=cfg.seed, split="test"):
            for v in VARIANTS:
                requests.append(GenerationRequest([{"role": "user", "content": task.prompt(q, v)}]))
                meta.append((name, size, task, q, v))
    params = SamplingParams(n=per_variant, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                            seed=cfg.seed)
    outs = backend.generate(requests, params, progress=progress)
    attempts, rows, tokens = [], {}, 0
    for (name, size, task, q, v), comps in zip(meta, outs):
        row = rows.setdefault((name, size), {"task": name, "size": size, "per_q": {}, "n": 0, "right": 0,
                                             "skill": 0, "length": 0, "tokens": 0})
        for c in comps:
            ok = task.check(q, c.text).correct
            row["n"] += 1
            row["right"] += ok
            row["skill"] += has_skill(c.text)
            row["length"] += c.finish_reason == "length"
            row["tokens"] += c.n_tokens
            row["per_q"][q.id] = row["per_q"].get(q.id, False) or ok
            attempts.append((task, q, c.text, ok, name))
            tokens += c.n_tokens
    table = []
    for row in rows.values():
        table.append({
            "task": row["task"], "size": row["size"], "questions": len(row["per_q"]), "samples": row["n"],
            "pass@1": round(row["right"] / row["n"], 4), f"pass@{k}": round(sum(row["per_q"].values()) / len(row["per_q"]), 4),
            "skill_share": round(row["skill"] / row["n"], 4), "truncated": round(row["length"] / row["n"], 4),
            "mean_tokens": round(row["tokens"] / row["n"], 1),
        })
    refl = _reflect(cfg, backend, attempts, GenerationRequest, SamplingParams, parse_verdict, reflection_prompt)
    n_all = sum(r["samples"] for r in table)
    return {
        "model": str(cfg.model), "k": k, "temperature": cfg.temperature, "countdown_params": cd,
        "rows": table, "reflection": refl,
        "skill_share": round(sum(r["skill_share"] * r["samples"] for r in table) / max(1, n_all), 4),
        "attempt_tokens": tokens, "seconds": round(time.time() - t0, 1),
    }


def _reflect(cfg, backend, attempts, GenerationRequest, SamplingParams, parse_verdict, reflection_prompt) -> dict:
    rng = random.Random(f"toy-eval-reflect/{cfg.seed}")
    chosen = rng.sample(attempts, min(cfg.reflections, len(attempts)))
    if not chosen:
        return {}
    reqs = [GenerationRequest([{"role": "user", "content": reflection_prompt(t.statement(q), text)}])
            for t, q, text, _, _ in chosen]
    params = SamplingParams(n=1, temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed + 1)
    outs = backend.generate(reqs, params)
    by: dict[str, dict[str, int]] = {}
    for (_, _, _, truth, name), comps in zip(chosen, outs):
        verdict = parse_verdict(comps[0].text)
        for key in (name, "all"):
            s = by.setdefault(key, {"n": 0, "agree": 0, "invalid": 0, "right_n": 0, "right_agree": 0,
                                    "wrong_n": 0, "wrong_agree": 0})
            s["n"] += 1
            s["invalid"] += verdict is None
            s["agree"] += verdict == truth
            s["right_n" if truth else "wrong_n"] += 1
            s["right_agree" if truth else "wrong_agree"] += verdict == truth
    return {key: {"reflections": s["n"], "agreement": round(s["agree"] / s["n"], 4),
                  "invalid": round(s["invalid"] / s["n"], 4),
                  "agreement_on_right": round(s["right_agree"] / s["right_n"], 4) if s["right_n"] else None,
                  "agreement_on_wrong": round(s["wrong_agree"] / s["wrong_n"], 4) if s["wrong_n"] else None}
            for key, s in by.items()}


def render_table(result: dict, console: Any) -> None:
    from rich.table import Table

    k = result["k"]
    t = Table(title=f"toy eval: {result['model']} (T={result['temperature']})")
    for col in ("task", "size", "questions", "pass@1", f"pass@{k}", "skill share", "truncated", "tokens"):
        t.add_column(col, justify="left" if col == "task" else "right")
    for r in result["rows"]:
        t.add_row(r["task"], str(r["size"]), str(r["questions"]), f"{r['pass@1']:.1%}", f"{r[f'pass@{k}']:.1%}",
                  f"{r['skill_share']:.1%}", f"{r['truncated']:.1%}", f"{r['mean_tokens']:.0f}")
    console.print(t)
    if result["reflection"]:
        rt = Table(title="reflection on own attempts")
        for col in ("task", "reflections", "agreement", "on right", "on wrong", "invalid"):
            rt.add_column(col, justify="left" if col == "task" else "right")
        for key, s in result["reflection"].items():
            fmt = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
            rt.add_row(key, str(s["reflections"]), fmt(s["agreement"]), fmt(s["agreement_on_right"]),
                       fmt(s["agreement_on_wrong"]), fmt(s["invalid"]))
        console.print(rt)
    console.print(f"answers with a second attempt or a verdict: {result['skill_share']:.1%}; "
                  f"{result['attempt_tokens']} attempt tokens; {result['seconds']:.0f} s", soft_wrap=True)
