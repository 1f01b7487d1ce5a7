"""The report: a reader of saved results only (evaluations, training logs), never part of a stage.

    >>> write_report(["runs/exp"], "runs/exp/report", title="Quickstart",
    ...              claims={"train_task": "countdown", "train_params": {"num_args": 3}})

writes ``report.md``, ``report.html`` (self-contained: plots inlined, trace viewer) and the PNG plots
(``accuracy_by_difficulty.png``, ``budget_forcing.png``, ``skill_usage.png``, ``training_curves.png``).
The same inputs give the same bytes: no timestamps, fixed plot metadata, sorted order everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillfactory.config import validate
from skillfactory.locking import locks_folder
from skillfactory.records import atomic_write_text
from skillfactory.report import plots as P
from skillfactory.report.claims import ClaimsConfig, evaluate_claims
from skillfactory.report.html import pick_traces, render_html
from skillfactory.report.load import ReportError, load_inputs
from skillfactory.report.seeds import claims_by_seed, reward_rise, reward_table, seeds_table
from skillfactory.report.tables import accuracy_table, budget_table, pass_at_k_table, skills_table, training_table

PLOTS = ("accuracy_by_difficulty.png", "budget_forcing.png", "skill_usage.png", "training_curves.png",
         "grpo_reward.png")


@locks_folder("report", "out")
def write_report(run_dirs: list[str | Path], out: str | Path, title: str = "SkillFactory report",
                 claims: dict[str, Any] | ClaimsConfig | None = None, traces_per_cell: int = 4, *,
                 train_task: str | None = None, train_params: dict[str, Any] | None = None,
                 task: str | None = None, params: dict[str, Any] | None = None) -> Path:
    """Write the report of ``run_dirs`` into ``out``; returns the path of ``report.html``.

    ``train_task``/``train_params`` name what the RL arms were trained on (``task``/``params`` are accepted
    as the same thing, the way a recipe's task section spells them). ``claims`` (optional) sets any other
    claims setting (keys of :class:`ClaimsConfig`: base, rl_only, method, min_attempts, ...). Both override
    an ``experiment.json`` found among the inputs.
    """
    inputs = load_inputs(run_dirs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    exp = {k: v for k, v in inputs.experiment.items() if k in ClaimsConfig.model_fields}
    given = claims.model_dump(exclude_unset=True) if isinstance(claims, ClaimsConfig) else dict(claims or {})
    if train_task or task:
        given["train_task"] = train_task or task
    if train_params is not None or params is not None:
        given["train_params"] = train_params if train_params is not None else params
    ccfg = validate(ClaimsConfig, {**exp, **{k: v for k, v in given.items() if v is not None}}, "claims settings")
    claim_rows = evaluate_claims(inputs.evals, ccfg) if inputs.evals else []
    per_seed = claims_by_seed(inputs.evals, ccfg) if inputs.evals else {}
    rises = reward_rise(inputs.trains, resamples=ccfg.resamples, seed=ccfg.seed)

    tables = []
    if (st := seeds_table(claim_rows, per_seed)) is not None:
        tables.append(st)
    if (rt := reward_table(rises)) is not None:
        tables.append(rt)
    if inputs.evals:
        tables += [accuracy_table(inputs.evals), pass_at_k_table(inputs.evals), skills_table(inputs.evals)]
        if (bt := budget_table(inputs.evals)) is not None:
            tables.append(bt)
    if (tt := training_table(inputs.trains)) is not None:
        tables.append(tt)

    for name in PLOTS:  # a stale plot from an earlier report must not survive into this one
        (out / name).unlink(missing_ok=True)
    made = [P.accuracy_by_difficulty(inputs.evals, out / PLOTS[0]) if inputs.evals else None,
            P.budget_forcing(inputs.evals, out / PLOTS[1]),
            P.skill_usage(inputs.evals, out / PLOTS[2]),
            P.training_curves(inputs.trains, out / PLOTS[3]) if inputs.trains else None,
            P.grpo_reward(inputs.trains, out / PLOTS[4]) if rises else None]
    plots = [p for p in made if p is not None]

    intro = _intro(inputs, ccfg)
    atomic_write_text(out / "report.md", _markdown(title, intro, claim_rows, tables, plots))
    html_path = out / "report.html"
    atomic_write_text(html_path, render_html(title, intro, claim_rows, tables, plots,
                                             pick_traces(inputs.evals, per_cell=traces_per_cell)))
    return html_path


def _intro(inputs: Any, ccfg: ClaimsConfig) -> list[str]:
    lines = []
    for r in inputs.evals:
        res = r.results
        seeds = res.get("seeds") or [res["seed"]]  # pooled runs: every seed, not the first run's
        seed = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds))}"
        lines.append(f"Model '{r.label}': {res['model']} on suite '{res['suite']}' ({seed}, temperature "
                     f"{res['temperature']}, {res.get('runs', 1)} run(s))")
    for t in inputs.trains:
        lines.append(f"Training run '{t.name}': {len(t.log)} logged steps")
    if ccfg.train_task:
        params = ", ".join(f"{k}={v}" for k, v in sorted(ccfg.train_params.items())) or "default parameters"
        lines.append(f"Trained on {ccfg.train_task} ({params}).")
    return lines


def _markdown(title: str, intro: list[str], claims: list[dict], tables: list, plots: list[Path]) -> str:
    md = [f"# {title}", ""]
    md += [f"- {x}" for x in intro] + [""]
    if claims:
        md += ["## Claims", ""]
        for c in claims:
            md.append(f"{c['claim']}. **{c['title']}: {c['status']}.** {c['measured']}")
        md.append("")
    md += ["## Tables", ""]
    for t in tables:
        md.append(t.markdown())
    if plots:
        md += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    md.append("The HTML version (report.html) adds a trace viewer with attempts, reflections and verdicts.")
    return "\n".join(md) + "\n"


__all__ = ["ClaimsConfig", "PLOTS", "ReportError", "write_report"]
