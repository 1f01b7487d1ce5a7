"""PNG plots of saved results (matplotlib, Agg backend, byte-identical for identical inputs).

Determinism: fixed figure size and dpi, no date or software stamp in the PNG metadata, fixed colour order, and
models / entries drawn in a sorted order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillfactory.report.load import EvalRun, TrainRun
from skillfactory.report.tables import SKILL_COLUMNS

COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]
DPI = 100


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "skillfactory"})
    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, metadata={"Software": None}, bbox_inches=None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _grid(n: int, plt: Any, width: float = 4.2, height: float = 3.2):
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [a for row in axes for a in row]
    for a in flat[n:]:
        a.set_visible(False)
    return fig, flat[:n]


def accuracy_by_difficulty(evals: list[EvalRun], path: Path) -> Path | None:
    """One panel per task group: accuracy against difficulty, one line per model, 95% intervals as error bars."""
    groups = sorted({e["group"] for r in evals for e in r.results["entries"]})
    if not groups:
        return None
    plt = _plt()
    fig, axes = _grid(len(groups), plt)
    for ax, group in zip(axes, groups):
        cats = sorted({(e["difficulty_value"] if not isinstance(e["difficulty_value"], str) else float("inf"),
                        e["difficulty"]) for r in evals for e in r.results["entries"] if e["group"] == group})
        xpos = {d: i for i, (_, d) in enumerate(cats)}
        n_models = max(1, len(evals))
        for m, r in enumerate(evals):
            es = [e for e in r.results["entries"] if e["group"] == group]
            es.sort(key=lambda e: xpos[e["difficulty"]])
            if not es:
                continue
            off = (m - (n_models - 1) / 2) * 0.06
            xs = [xpos[e["difficulty"]] + off for e in es]
            ys = [e["accuracy"] for e in es]
            err = [[y - e["ci"][0] for y, e in zip(ys, es)], [e["ci"][1] - y for y, e in zip(ys, es)]]
            ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=COLORS[m % len(COLORS)], label=r.label)
        ax.set_xlim(-0.5, len(cats) - 0.5)  # one difficulty still gets a sensible width
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels([d.split("=")[-1] if "=" in d and "," not in d else d for _, d in cats])
        key = cats[0][1].split("=")[0] if cats and "=" in cats[0][1] and "," not in cats[0][1] else "difficulty"
        ax.set_xlabel(key)
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(group)
        ax.legend(fontsize=8)
    fig.suptitle("Accuracy by difficulty (95% intervals)")
    fig.tight_layout()
    return _save(fig, path)


def budget_forcing(evals: list[EvalRun], path: Path) -> Path | None:
    """Accuracy against the budget and against tokens used, one line per (model, entry, budget kind)."""
    curves = [(r, c) for r in evals for c in r.results["budget_forcing"]["curves"]]
    if not curves:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (r, c) in enumerate(curves):
        pts = c["points"]
        color = COLORS[i % len(COLORS)]
        style = "-" if c["mode"] == "count" else "--"
        name = f"{r.label} {c['entry']}" + (" (tokens)" if c["mode"] == "tokens" else "") + (" no-op" if c["noop"] else "")
        ys = [p["accuracy"] for p in pts]
        err = [[y - p["ci"][0] for y, p in zip(ys, pts)], [p["ci"][1] - y for y, p in zip(ys, pts)]]
        if c["mode"] == "count":
            a1.errorbar([p["budget"] for p in pts], ys, yerr=err, marker="o", capsize=3, color=color, ls=style,
                        label=name)
        a2.errorbar([p["mean_tokens"] or 0 for p in pts], ys, yerr=err, marker="o", capsize=3, color=color, ls=style,
                    label=name)
    a1.set_xlabel("forced continuations (budget)")
    a2.set_xlabel("mean tokens per answer")
    for a in (a1, a2):
        a.set_ylabel("accuracy")
        a.set_ylim(-0.03, 1.03)
        a.legend(fontsize=7)
    fig.suptitle("Budget forcing")
    fig.tight_layout()
    return _save(fig, path)


def skill_usage(evals: list[EvalRun], path: Path) -> Path | None:
    """Bars per model: counts per answer (left) and rates (right), pooled over all entries by answers."""
    if not evals:
        return None
    plt = _plt()
    counts = SKILL_COLUMNS[:3]
    rates = SKILL_COLUMNS[3:]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(evals)
    top = 1.0
    for m, r in enumerate(evals):
        es = r.results["entries"]
        total = sum(e["skills"]["answers"] for e in es) or 1

        def pooled(key: str) -> float:
            vals = [(e["skills"].get(key), e["skills"]["answers"]) for e in es if e["skills"].get(key) is not None]
            w = sum(a for _, a in vals)
            return sum(v * a for v, a in vals) / w if w else 0.0

        color = COLORS[m % len(COLORS)]
        top = max([top] + [pooled(k) for k, _ in counts])
        a1.bar([i + m * width for i in range(len(counts))], [pooled(k) for k, _ in counts], width, color=color,
               label=f"{r.label} ({total} answers)")
        a2.bar([i + m * width for i in range(len(rates))], [pooled(k) for k, _ in rates], width, color=color,
               label=r.label)
    a1.set_xticks([i + 0.4 - width / 2 for i in range(len(counts))])
    a1.set_xticklabels([h for _, h in counts])
    a1.set_ylabel("per answer")
    a1.set_ylim(0, top * 1.35)  # headroom for the legend
    a2.set_xticks([i + 0.4 - width / 2 for i in range(len(rates))])
    a2.set_xticklabels([h.replace(" ", "\n", 1) for _, h in rates], fontsize=8)
    a2.set_ylim(0, 1.05)
    a2.set_ylabel("rate")
    a1.legend(fontsize=8, loc="upper right")
    fig.suptitle("Skill usage (all suite entries pooled)")
    fig.tight_layout()
    return _save(fig, path)


TRAIN_KEYS = [("loss", "loss"), ("reward_mean", "reward (mean)"), ("completion_length", "completion length"),
              ("attempts", "attempts per completion")]


def training_curves(trains: list[TrainRun], path: Path) -> Path | None:
    """Loss, reward, completion length and attempts per step, one line per training run."""
    keys = [(k, t) for k, t in TRAIN_KEYS if any(isinstance(x.get(k), (int, float)) for tr in trains for x in tr.log)]
    if not keys:
        return None
    plt = _plt()
    fig, axes = _grid(len(keys), plt, width=4.6)
    for ax, (key, title) in zip(axes, keys):
        for i, tr in enumerate(trains):
            pts = [(x["step"], x[key]) for x in tr.log if isinstance(x.get(key), (int, float)) and "step" in x]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], color=COLORS[i % len(COLORS)], label=tr.name, lw=1.2)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.suptitle("Training curves")
    fig.tight_layout()
    return _save(fig, path)


def grpo_reward(trains: list[TrainRun], path: Path, window: int = 5) -> Path | None:
    """GRPO training reward per step, one panel per arm: each seed thin, the mean over seeds bold (a moving
    average over ``window`` steps, since one step's reward is a mean over a few prompts only)."""
    from skillfactory.report.seeds import grpo_runs_by_arm, reward_points, seed_of

    groups = grpo_runs_by_arm(trains)
    if not groups:
        return None
    plt = _plt()
    fig, axes = _grid(len(groups), plt, width=4.6)

    def smooth(ys: list[float]) -> list[float]:
        return [sum(ys[max(0, i - window + 1):i + 1]) / len(ys[max(0, i - window + 1):i + 1]) for i in range(len(ys))]

    for ax, (arm, runs) in zip(axes, groups.items()):
        curves = []
        for i, tr in enumerate(runs):
            pts = reward_points(tr)
            ys = [y for _, y in pts]
            curves.append(ys)
            ax.plot([x for x, _ in pts], smooth(ys), color=COLORS[i % len(COLORS)], lw=0.8, alpha=0.6,
                    label=seed_of(tr.path) or tr.name)
        n = min(len(c) for c in curves)
        mean = [sum(c[i] for c in curves) / len(curves) for i in range(n)]
        ax.plot(range(1, n + 1), smooth(mean), color="black", lw=2, label=f"mean of {len(curves)}")
        ax.set_title(arm)
        ax.set_xlabel("step")
        ax.set_ylabel(f"reward ({window}-step average)")
        ax.legend(fontsize=7)
    fig.suptitle("GRPO training reward")
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["accuracy_by_difficulty", "budget_forcing", "grpo_reward", "skill_usage", "training_curves"]
