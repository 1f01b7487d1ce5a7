"""Report tables, built once as rows of strings and rendered both as Markdown and as HTML."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from skillfactory.report.load import EvalRun, TrainRun


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""

    def markdown(self) -> str:
        def cell(x: str) -> str:
            return x.replace("|", "\\|")

        lines = [f"### {self.title}", ""]
        if self.note:
            lines += [self.note, ""]
        lines.append("| " + " | ".join(map(cell, self.headers)) + " |")
        lines.append("|" + "|".join("---" for _ in self.headers) + "|")
        lines += ["| " + " | ".join(map(cell, r)) + " |" for r in self.rows]
        return "\n".join(lines) + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self.rows)
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return f"<h3>{html.escape(self.title)}</h3>{note}<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _ci(e: dict[str, Any]) -> str:
    return f"{e['accuracy']:.3f} [{e['ci'][0]:.3f}, {e['ci'][1]:.3f}]"


def _num(x: float | None, fmt: str = ".2f") -> str:
    return "-" if x is None else format(x, fmt)


def _cells(evals: list[EvalRun]) -> list[tuple[str, str, str, float | str]]:
    """(group, difficulty, entry label, sort value) of every entry any model has, in a stable order."""
    seen: dict[str, tuple[str, str, str, float | str]] = {}
    for run in evals:
        for e in run.results["entries"]:
            seen.setdefault(e["label"], (e["group"], e["difficulty"], e["label"], e["difficulty_value"]))
    return sorted(seen.values(), key=lambda t: (t[0], isinstance(t[3], str), t[3] if not isinstance(t[3], str) else 0,
                                                str(t[3]), t[2]))


def _entry(run: EvalRun, label: str) -> dict[str, Any] | None:
    return next((e for e in run.results["entries"] if e["label"] == label), None)


def accuracy_table(evals: list[EvalRun]) -> Table:
    method = evals[0].results.get("interval", {}) if evals else {}
    note = (f"Mean accuracy over samples with a 95% interval ({method.get('method', 'bootstrap')} over "
            f"{method.get('unit', 'questions')}). n = questions x samples per question.")
    t = Table("Accuracy by task and difficulty", ["task", "difficulty", "n"] + [_run_name(r) for r in evals], note=note)
    for group, diff, label, _ in _cells(evals):
        row = [group, diff]
        ns = {str(e["n"]) for r in evals if (e := _entry(r, label))}
        row.append("/".join(sorted(ns)))
        for r in evals:
            e = _entry(r, label)
            row.append(_ci(e) if e else "-")
        t.rows.append(row)
    return t


def _run_name(r: EvalRun) -> str:
    runs = r.results.get("runs", 1)
    return r.label if runs == 1 else f"{r.label} ({runs} runs)"


def pass_at_k_table(evals: list[EvalRun]) -> Table:
    ks = sorted({int(k) for r in evals for e in r.results["entries"] for k in e["pass_at_k"]})
    t = Table("pass@k (unbiased estimator, mean over questions)", ["model", "task", "difficulty"] + [f"pass@{k}" for k in ks])
    for r in evals:
        for group, diff, label, _ in _cells([r]):
            e = _entry(r, label)
            t.rows.append([r.label, group, diff] + [_pct(e["pass_at_k"].get(str(k))) for k in ks])
    return t


SKILL_COLUMNS = [
    ("attempts_per_answer", "attempts/answer"), ("reflections_per_answer", "reflections/answer"),
    ("verdicts_per_answer", "verdicts/answer"), ("verdict_accuracy", "verdict accuracy"),
    ("retry_after_incorrect", "retry after Incorrect"), ("stop_after_correct", "stop after Correct"),
    ("final_matches_last_correct", "final = last judged Correct"),
    ("well_formed_rate", "in trace structure"), ("glue_verbatim_rate", "glue verbatim"),
]


def skills_table(evals: list[EvalRun]) -> Table:
    note = ("Attempts are <sample> blocks; an answer without tags counts as one attempt with no reflection. "
            "Verdict accuracy: share of verdicts that agree with the verifier on the attempt they judge. "
            "'-' = never applicable (e.g. no verdict given). In trace structure: every <sample> closed and a final "
            "<answer> after the last one. Glue verbatim: lines outside every block that are exactly a phrase of "
            "the trace builder's pools.")
    t = Table("Skill usage and response length", ["model", "task", "difficulty", "tokens/answer", "truncated"]
              + [h for _, h in SKILL_COLUMNS], note=note)
    for r in evals:
        for group, diff, label, _ in _cells([r]):
            e = _entry(r, label)
            sk = e["skills"]
            t.rows.append([r.label, group, diff, _num(e["mean_tokens"], ".1f"), _num(e["truncated_rate"], ".2f")]
                          + [_num(sk.get(k)) for k, _ in SKILL_COLUMNS])
    return t


def budget_table(evals: list[EvalRun]) -> Table | None:
    rows = []
    for r in evals:
        for c in r.results["budget_forcing"]["curves"]:
            for p in c["points"]:
                rows.append([r.label, c["entry"], "continuations" if c["mode"] == "count" else "thinking tokens",
                             str(p["budget"]), f"{p['accuracy']:.3f} [{p['ci'][0]:.3f}, {p['ci'][1]:.3f}]",
                             _num(p["mean_tokens"], ".1f"), _num(p["mean_forced"]), _num(p["attempts_per_answer"]),
                             "yes" if c["noop"] else ""])
    if not rows:
        return None
    return Table("Budget forcing", ["model", "entry", "budget kind", "budget", "accuracy [95% CI]", "tokens/answer",
                                    "forced/answer", "attempts/answer", "no-op (never closed </think>)"], rows,
                 note="Forced continuations: at </think> the text is cut and a new <sample> is opened; once the "
                      "budget is spent the model finishes on its own.")


def training_table(trains: list[TrainRun]) -> Table | None:
    if not trains:
        return None
    t = Table("Training runs", ["run", "stage", "steps", "first loss", "last loss", "first reward", "last reward",
                                "last attempts", "last verdicts"])
    for tr in trains:
        log = [x for x in tr.log if "step" in x]
        if not log:
            continue

        def first_last(key: str) -> tuple[str, str]:
            vals = [x[key] for x in log if isinstance(x.get(key), (int, float))]
            return (_num(vals[0], ".4f"), _num(vals[-1], ".4f")) if vals else ("-", "-")

        fl, ll = first_last("loss")
        fr, lr = first_last("reward_mean")
        _, la = first_last("attempts")
        _, lv = first_last("verdicts")
        stages = "/".join(sorted({str(x.get("stage", "?")) for x in log}))
        t.rows.append([tr.name, stages, str(max(int(x["step"]) for x in log)), fl, ll, fr, lr, la, lv])
    return t


__all__ = ["SKILL_COLUMNS", "Table", "accuracy_table", "budget_table", "pass_at_k_table", "skills_table",
           "training_table"]
