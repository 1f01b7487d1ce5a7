"""Find and read the saved outputs a report is made of (never runs a model or a verifier).

A run folder with ``results.json`` is an evaluated model, named by its ``label``; one with
``train_log.jsonl`` is a training run. A folder holding neither is searched (recursively, in sorted order),
so ``skillfactory report runs/my_experiment`` finds every stage below it. Several evaluated runs with the same
label (e.g. one per training seed) are merged: their per-question counts are pooled, and the tables say how
many runs a figure pools. An ``experiment.json`` found in an input folder supplies the claims settings
(train task and parameters, arm labels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillfactory.errors import SkillFactoryError
from skillfactory.evaluation.metrics import cluster_bootstrap_interval, pass_at_k
from skillfactory.records import iter_jsonl


class ReportError(SkillFactoryError, ValueError):
    """Report inputs that cannot be used; the message names the folder and what is missing."""


@dataclass
class EvalRun:
    """One model label, possibly pooled over several evaluated run folders."""

    label: str
    paths: list[Path]
    results: dict[str, Any]  # merged results.json (same shape as a single one)
    samples: list[dict[str, Any]] = field(default_factory=list)  # plain + forced scored samples of all paths


@dataclass
class TrainRun:
    name: str
    path: Path
    log: list[dict[str, Any]]


@dataclass
class ReportInputs:
    evals: list[EvalRun]
    trains: list[TrainRun]
    experiment: dict[str, Any]


def _discover(paths: list[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    evals, trains, experiments = [], [], []
    for p in paths:
        if not p.exists():
            raise ReportError(f"{p}: no such folder")
        if p.is_file():
            p = p.parent
        found = False
        if (p / "experiment.json").exists():
            experiments.append(p / "experiment.json")
        for q in [p, *sorted(x for x in p.rglob("*") if x.is_dir())]:
            if (q / "results.json").exists():
                evals.append(q)
                found = True
            if (q / "train_log.jsonl").exists():
                trains.append(q)
                found = True
        if not found and not (p / "experiment.json").exists():
            raise ReportError(f"{p}: holds no results.json (an evaluation) or train_log.jsonl (a training run), "
                              "nor any folder below it that does")
    return _unique(evals), _unique(trains), _unique(experiments)


def _unique(paths: list[Path]) -> list[Path]:
    seen, out = set(), []
    for p in paths:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _train_names(paths: list[Path]) -> list[str]:
    """Shortest trailing path parts that tell the runs apart (``rl_only/grpo``, ``skillfactory/grpo``)."""
    for depth in range(1, 8):
        names = ["/".join(p.resolve().parts[-depth:]) for p in paths]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def load_inputs(run_dirs: list[str | Path]) -> ReportInputs:
    eval_dirs, train_dirs, exp_files = _discover([Path(p) for p in run_dirs])
    if not eval_dirs and not train_dirs:
        raise ReportError("no evaluation (results.json) or training run (train_log.jsonl) in the given folders")
    by_label: dict[str, list[tuple[Path, dict]]] = {}
    for d in eval_dirs:
        try:
            res = json.loads((d / "results.json").read_text())
        except json.JSONDecodeError as e:
            raise ReportError(f"{d / 'results.json'}: not valid JSON ({e.msg})") from None
        if "entries" not in res or "label" not in res:
            raise ReportError(f"{d / 'results.json'}: not an evaluation result (no 'entries'/'label')")
        by_label.setdefault(res["label"], []).append((d, res))
    evals = []
    for label in sorted(by_label, key=_label_order):
        runs = by_label[label]
        merged = runs[0][1] if len(runs) == 1 else merge_results([r for _, r in runs])
        samples: list[dict] = []
        for d, _ in runs:
            for name in ("samples.jsonl", "budget_forcing.jsonl"):
                if (d / name).exists():
                    samples.extend(iter_jsonl(d / name))
        evals.append(EvalRun(label, [d for d, _ in runs], merged, samples))
    trains = [TrainRun(n, d, list(iter_jsonl(d / "train_log.jsonl"))) for n, d in zip(_train_names(train_dirs), train_dirs)]
    experiment: dict[str, Any] = {}
    for f in exp_files:
        try:
            experiment.update(json.loads(f.read_text()))
        except json.JSONDecodeError as e:
            raise ReportError(f"{f}: not valid JSON ({e.msg})") from None
    return ReportInputs(evals, trains, experiment)


#: Arms in the order the report shows them; other labels follow alphabetically.
LABEL_ORDER = ("base", "sft_only", "rl_only", "skillfactory")


def _label_order(label: str) -> tuple[int, str]:
    return (LABEL_ORDER.index(label) if label in LABEL_ORDER else len(LABEL_ORDER), label)


# ---- merging several runs of one label -------------------------------------------------------------------------

_RATES = {  # rate -> its denominator in the aggregate
    "verdict_accuracy": "verdicts_judged",
    "retry_after_incorrect": "incorrect_verdicts",
    "stop_after_correct": "correct_verdicts",
    "final_matches_last_correct": "answers_with_correct_verdict",
    "glue_verbatim_rate": "glue_lines",
}


def _pool_counts(dicts: list[dict[str, list[int]]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for d in dicts:
        for q, (c, n) in d.items():
            cur = out.setdefault(q, [0, 0])
            cur[0] += c
            cur[1] += n
    return dict(sorted(out.items()))


def _acc_fields(per_q: dict[str, list[int]], seed: int, resamples: int) -> dict[str, Any]:
    clusters = [tuple(v) for v in per_q.values()]
    c = sum(x for x, _ in clusters)
    n = sum(y for _, y in clusters)
    lo, hi = cluster_bootstrap_interval(clusters, resamples=resamples, seed=seed)
    return {"accuracy": c / n if n else 0.0, "ci": [lo, hi], "correct": c, "n": n}


def _weighted(values: list[tuple[float | None, float]]) -> float | None:
    pairs = [(v, w) for v, w in values if v is not None and w]
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total else None


def _merge_skills(skills: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"answers": sum(s["answers"] for s in skills)}
    for key, value in skills[0].items():
        if key == "answers":
            continue
        if key in _RATES:
            out[key] = _weighted([(s.get(key), s.get(_RATES[key], 0)) for s in skills])
        elif isinstance(value, int) and not isinstance(value, bool) and key not in ("answers",):
            out[key] = sum(s.get(key, 0) for s in skills)
        else:  # .get: a results.json written before a metric existed has none of it
            out[key] = _weighted([(s.get(key), s["answers"]) for s in skills])
    return out


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Pool several results.json of one label (same suite) into one: counts pooled per question id."""
    base = results[0]
    resamples = base.get("interval", {}).get("resamples") or 2000
    entries = []
    for i, e in enumerate(base["entries"]):
        peers = [e] + [e2 for r in results[1:] for e2 in r["entries"] if e2["label"] == e["label"]]
        per_q = _pool_counts([p["per_question"] for p in peers])
        counts = [(n, c) for c, n in per_q.values()]
        n_min = min((n for n, _ in counts), default=0)
        pak = {k: (sum(pass_at_k(n, c, int(k)) for n, c in counts) / len(counts) if int(k) <= n_min else None)
               for k in e["pass_at_k"]}
        merged = {**e, **_acc_fields(per_q, 7919 + i, resamples), "per_question": per_q,
                  "n_questions": len(per_q), "pass_at_k": pak,
                  "mean_tokens": _weighted([(p["mean_tokens"], p["n"]) for p in peers]),
                  "truncated_rate": _weighted([(p["truncated_rate"], p["n"]) for p in peers]),
                  "skills": _merge_skills([p["skills"] for p in peers]), "runs": len(peers)}
        entries.append(merged)
    curves = []
    for i, cv in enumerate(base["budget_forcing"]["curves"]):
        peers = [cv] + [c2 for r in results[1:] for c2 in r["budget_forcing"]["curves"]
                        if (c2["entry"], c2["mode"]) == (cv["entry"], cv["mode"])]
        points = []
        for pt in cv["points"]:
            same = [p for c in peers for p in c["points"] if p["budget"] == pt["budget"]]
            per_q = _pool_counts([p["per_question"] for p in same])
            points.append({**pt, **_acc_fields(per_q, 1000 + i * 97, resamples), "per_question": per_q,
                           **{k: _weighted([(p[k], p["n"]) for p in same])
                              for k in ("mean_tokens", "mean_forced", "forced_answer_rate", "closed_thinking_rate",
                                        "attempts_per_answer")}})
        curves.append({**cv, "points": points, "noop": all(c["noop"] for c in peers)})
    return {**base, "entries": entries, "budget_forcing": {**base["budget_forcing"], "curves": curves},
            "runs": len(results), "model": ", ".join(sorted({r["model"] for r in results})),
            "seeds": sorted({r["seed"] for r in results if r.get("seed") is not None})}


__all__ = ["EvalRun", "LABEL_ORDER", "ReportError", "ReportInputs", "TrainRun", "load_inputs", "merge_results"]
