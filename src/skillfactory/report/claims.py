"""The paper's four claims, each stated as what was measured, with intervals, and whether it held.

Every comparison between two models is **paired**: the difference in accuracy over the questions both models
answered, with a bootstrap interval that resamples those questions. A claim *held* when the measured effect
points the claimed way and its 95% interval excludes zero; *direction only* when it points the claimed way
but the interval includes zero (not enough questions to tell); *did not hold* otherwise; *not testable* when
the inputs lack what the claim needs (a label, a harder variant, a budget-forcing curve).

1. harder variants: ``skillfactory - rl_only`` accuracy on the training task's entries that differ from the
   training parameters (defaults filled in) in exactly one numeric parameter, set higher (e.g. countdown with
   4-6 numbers after training on 3);
2. skills used: ``skillfactory``'s attempts and verdicts per answer on the training task (interval: bootstrap
   over questions) are at least ``min_attempts`` / ``min_verdicts``, and its verdicts are right more often than
   chance would give (reported, not required);
3. less out-of-domain regression: ``(skillfactory - base) - (rl_only - base) = skillfactory - rl_only`` on
   entries of other tasks, with both regressions shown;
4. budget forcing: ``skillfactory``'s accuracy at the largest forced-continuation budget minus at budget 0,
   and the least-squares slope of accuracy against budget.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skillfactory.evaluation.metrics import percentile, paired_bootstrap_difference
from skillfactory.report.load import EvalRun


class ClaimsConfig(BaseModel):
    """Where the claims look. ``train_task``/``train_params`` name what the RL arms were trained on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    train_task: str | None = None
    train_params: dict[str, Any] = Field(default_factory=dict)
    base: str = "base"
    rl_only: str = "rl_only"
    method: str = "skillfactory"
    min_attempts: float = 1.5  # claim 2: attempts (<sample> blocks) per answer
    min_verdicts: float = 1.0  # claim 2: verdicts per answer
    resamples: int = 2000
    seed: int = 0


HELD, DIRECTION, FAILED, UNTESTABLE = "held", "direction only", "did not hold", "not testable"


def _verdict(diff: float, lo: float, hi: float, sign: int = 1) -> str:
    if sign * diff > 0 and (lo > 0 if sign > 0 else hi < 0):
        return HELD
    return DIRECTION if sign * diff > 0 else FAILED


def _pooled(run: EvalRun, labels: set[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for e in run.results["entries"]:
        if e["label"] in labels:
            for q, (c, n) in e["per_question"].items():
                out[f"{e['label']}|{q}"] = (c, n)
    return out


def _fmt(x: float) -> str:
    return f"{x:+.3f}"


def _diff_text(d: tuple[float, tuple[float, float], int]) -> str:
    diff, (lo, hi), n = d
    return f"{_fmt(diff)} [{_fmt(lo)}, {_fmt(hi)}] over {n} questions"


def _full_params(task: str, params: dict[str, Any]) -> dict[str, Any]:
    """Parameters with the task's defaults filled in, so ``{num_args: 3}`` equals ``{num_args: 3, max_number:
    100}``; the raw parameters when the task cannot be imported here."""
    try:
        from skillfactory.tasks import get_task_class

        return get_task_class(task).Params(**params).model_dump()
    except Exception:  # noqa: BLE001 - the report must work from saved files even without the task's code
        return dict(params)


def _harder_entries(runs: dict[str, EvalRun], cfg: ClaimsConfig) -> tuple[list[dict], str]:
    """Entries of the training task that differ from the training parameters in exactly one numeric
    parameter, set higher (e.g. ``num_args`` 4, 5, 6 after training on 3), and that parameter's name."""
    any_run = next(iter(runs.values()))
    train = _full_params(cfg.train_task, cfg.train_params)
    out, keys = [], set()
    for e in any_run.results["entries"]:
        if e["task"] != cfg.train_task:
            continue
        p = _full_params(e["task"], e["params"])
        diff = [k for k in sorted(set(p) | set(train)) if p.get(k) != train.get(k)]
        if len(diff) != 1:
            continue
        k = diff[0]
        a, b = p.get(k), train.get(k)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and a > b:
            out.append(e)
            keys.add(k)
    return out, ",".join(sorted(keys))


def evaluate_claims(evals: list[EvalRun], cfg: ClaimsConfig) -> list[dict[str, Any]]:
    """One dict per claim: number, title, status, measured (text), and figures for the HTML/markdown."""
    runs = {r.label: r for r in evals}
    need = [x for x in (cfg.base, cfg.rl_only, cfg.method) if x not in runs]
    claims: list[dict[str, Any]] = []
    titles = {
        1: "SkillFactory then RL generalizes better to harder variants than RL alone",
        2: "The trained model uses the skills (attempts, reflections, verdicts)",
        3: "It regresses less out of domain than RL alone",
        4: "Budget forcing raises accuracy with the budget",
    }

    def add(n: int, status: str, measured: str, **extra: Any) -> None:
        claims.append({"claim": n, "title": titles[n], "status": status, "measured": measured, **extra})

    if cfg.train_task is None:
        for n in (1, 2, 3):
            add(n, UNTESTABLE, "the training task is unknown: pass --train-task/--train-param or an experiment.json")
    else:
        _claim1(add, runs, cfg, need)
        _claim2(add, runs, cfg)
        _claim3(add, runs, cfg, need)
    _claim4(add, runs, cfg)
    return sorted(claims, key=lambda c: c["claim"])


def _claim1(add, runs, cfg, need) -> None:
    if cfg.rl_only in need or cfg.method in need:
        return add(1, UNTESTABLE, f"needs evaluated models labelled {cfg.rl_only!r} and {cfg.method!r}")
    harder, key = _harder_entries(runs, cfg)
    train_desc = ", ".join(f"{k}={v}" for k, v in sorted(cfg.train_params.items())) or "default parameters"
    if not harder:
        return add(1, UNTESTABLE, f"the suite has no {cfg.train_task} entry harder than the training one "
                                  f"({train_desc}) in a single numeric parameter")
    labels = {e["label"] for e in harder}
    d = paired_bootstrap_difference(_pooled(runs[cfg.method], labels), _pooled(runs[cfg.rl_only], labels),
                                    resamples=cfg.resamples, seed=cfg.seed)
    if d is None:
        return add(1, UNTESTABLE, "the two models share no evaluated question")
    per = []
    for e in harder:
        dd = paired_bootstrap_difference(_pooled(runs[cfg.method], {e["label"]}), _pooled(runs[cfg.rl_only], {e["label"]}),
                                         resamples=cfg.resamples, seed=cfg.seed)
        if dd:
            per.append(f"{e['difficulty']}: {_diff_text(dd)}")
    add(1, _verdict(d[0], *d[1]),
        f"{cfg.method} - {cfg.rl_only} accuracy on {cfg.train_task} with {key} above training ({train_desc}): "
        f"{_diff_text(d)}"
        + (f" ({'; '.join(per)})" if per else ""), difference=d[0], ci=list(d[1]))


def _bootstrap_mean(per_q: dict[str, list[float]], cfg: ClaimsConfig) -> tuple[float, float, float]:
    """Mean over answers with a bootstrap interval over questions (answers of one question resampled together)."""
    groups = [v for _, v in sorted(per_q.items())]
    flat = [x for g in groups for x in g]
    mean = sum(flat) / len(flat)
    rng = random.Random(cfg.seed)
    stats = []
    for _ in range(cfg.resamples):
        pick = [groups[rng.randrange(len(groups))] for _ in groups]
        tot = sum(len(g) for g in pick)
        stats.append(sum(sum(g) for g in pick) / tot)
    stats.sort()
    return mean, percentile(stats, 0.025), percentile(stats, 0.975)


def _claim2(add, runs, cfg) -> None:
    if cfg.method not in runs:
        return add(2, UNTESTABLE, f"needs an evaluated model labelled {cfg.method!r}")
    labels = {e["label"] for e in runs[cfg.method].results["entries"] if e["task"] == cfg.train_task}
    att: dict[str, list[float]] = {}
    ver: dict[str, list[float]] = {}
    for s in runs[cfg.method].samples:
        if s.get("mode", "plain") == "plain" and s["entry"] in labels:
            att.setdefault(s["question_id"], []).append(s["skills"]["attempts"])
            ver.setdefault(s["question_id"], []).append(s["skills"]["verdicts"])
    if not att:
        return add(2, UNTESTABLE, f"no saved samples of {cfg.method!r} on {cfg.train_task}")
    a, alo, ahi = _bootstrap_mean(att, cfg)
    v, vlo, vhi = _bootstrap_mean(ver, cfg)
    acc = [e["skills"].get("verdict_accuracy") for e in runs[cfg.method].results["entries"] if e["label"] in labels]
    acc_s = ", ".join(f"{x:.2f}" for x in acc if x is not None) or "n/a"
    others = []
    for lab in (cfg.base, cfg.rl_only):
        if lab in runs:
            vals = [e["skills"]["attempts_per_answer"] for e in runs[lab].results["entries"] if e["label"] in labels]
            vals = [x for x in vals if x is not None]
            if vals:
                others.append(f"{lab} {sum(vals) / len(vals):.2f}")
    status = HELD if alo >= cfg.min_attempts and vlo >= cfg.min_verdicts else (
        DIRECTION if a >= cfg.min_attempts and v >= cfg.min_verdicts else FAILED)
    add(2, status, f"{cfg.method} on {cfg.train_task}: {a:.2f} [{alo:.2f}, {ahi:.2f}] attempts and {v:.2f} "
        f"[{vlo:.2f}, {vhi:.2f}] verdicts per answer (thresholds {cfg.min_attempts}, {cfg.min_verdicts}); "
        f"verdict accuracy per entry: {acc_s}" + (f"; attempts per answer of {', '.join(others)}" if others else ""),
        attempts=[a, alo, ahi], verdicts=[v, vlo, vhi])


def _claim3(add, runs, cfg, need) -> None:
    if need:
        return add(3, UNTESTABLE, f"needs evaluated models labelled {', '.join(map(repr, need))}")
    ood = {e["label"] for e in runs[cfg.method].results["entries"] if e["task"] != cfg.train_task}
    if not ood:
        return add(3, UNTESTABLE, f"the suite has no task other than {cfg.train_task}")
    pooled = {lab: _pooled(runs[lab], ood) for lab in (cfg.base, cfg.rl_only, cfg.method)}
    kw = {"resamples": cfg.resamples, "seed": cfg.seed}
    d = paired_bootstrap_difference(pooled[cfg.method], pooled[cfg.rl_only], **kw)
    rl = paired_bootstrap_difference(pooled[cfg.rl_only], pooled[cfg.base], **kw)
    sf = paired_bootstrap_difference(pooled[cfg.method], pooled[cfg.base], **kw)
    if d is None or rl is None or sf is None:
        return add(3, UNTESTABLE, "the models share no out-of-domain question")
    add(3, _verdict(d[0], *d[1]),
        f"out of domain ({len(ood)} {'entry' if len(ood) == 1 else 'entries'}): {cfg.rl_only} - {cfg.base} {_diff_text(rl)}; {cfg.method} - {cfg.base} "
        f"{_diff_text(sf)}; {cfg.method} - {cfg.rl_only} {_diff_text(d)}", difference=d[0], ci=list(d[1]))


def _claim4(add, runs, cfg) -> None:
    if cfg.method not in runs:
        return add(4, UNTESTABLE, f"needs an evaluated model labelled {cfg.method!r}")
    curves = [c for c in runs[cfg.method].results["budget_forcing"]["curves"] if c["mode"] == "count"
              and len(c["points"]) >= 2]
    if not curves:
        return add(4, UNTESTABLE, f"{cfg.method!r} has no budget-forcing curve with two or more budgets")
    if all(c["noop"] for c in curves):
        return add(4, FAILED, f"{cfg.method!r} never closed its thinking: budget forcing was a no-op")
    lo_pts, hi_pts, texts, slopes = {}, {}, [], []
    for c in curves:
        first, last = c["points"][0], c["points"][-1]
        for q, v in first["per_question"].items():
            lo_pts[f"{c['entry']}|{q}"] = tuple(v)
        for q, v in last["per_question"].items():
            hi_pts[f"{c['entry']}|{q}"] = tuple(v)
        xs = [p["budget"] for p in c["points"]]
        ys = [p["accuracy"] for p in c["points"]]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
        slopes.append(slope)
        texts.append(f"{c['entry']}: " + ", ".join(f"B={p['budget']} {p['accuracy']:.3f} [{p['ci'][0]:.3f}, "
                                                     f"{p['ci'][1]:.3f}]" for p in c["points"])
                     + f", slope {slope:+.4f}/continuation")
    d = paired_bootstrap_difference(hi_pts, lo_pts, resamples=cfg.resamples, seed=cfg.seed)
    if d is None:
        return add(4, UNTESTABLE, "no question shared by the lowest and highest budget")
    add(4, _verdict(d[0], *d[1]), f"{cfg.method}: accuracy at the largest budget minus budget 0: {_diff_text(d)}; "
        + "; ".join(texts), difference=d[0], ci=list(d[1]), slopes=slopes)


__all__ = ["ClaimsConfig", "DIRECTION", "FAILED", "HELD", "UNTESTABLE", "evaluate_claims"]
