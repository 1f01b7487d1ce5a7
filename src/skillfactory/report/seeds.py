"""Several seeds in one report: each claim per seed beside the pooled one, and whether RL raised the reward.

A study runs every arm once per seed (``<out>/s<seed>/...``). The pooled claims (report/claims.py) resample
(seed, question) pairs: each seed draws its own test questions, so pooling them is pooling questions. This
module adds what a reader of a multi-seed study wants next to that:

- the same claims computed on each seed alone, so a pooled result carried by one seed shows;
- for every GRPO arm, the mean training reward over the last 20% of steps minus the first 20%, averaged over
  seeds, with a bootstrap interval that resamples the logged steps of each window within each seed (a step's
  reward is the mean over its prompts x rollouts; the logs keep no finer unit).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from skillfactory.evaluation.metrics import percentile
from skillfactory.report.claims import DIRECTION, FAILED, HELD, ClaimsConfig, evaluate_claims
from skillfactory.report.load import EvalRun, TrainRun, load_inputs
from skillfactory.report.tables import Table

_SEED = re.compile(r"^s(\d+)$")
WINDOW = 0.2  # share of steps at each end of a training run


def seed_of(path: Path) -> str | None:
    """The ``s<seed>`` folder a run lies in (the pipeline's layout), or None."""
    for part in reversed(Path(path).resolve().parts):
        if _SEED.match(part):
            return part
    return None


def arm_of(path: Path) -> str:
    """A training run's name without its seed: the folders below ``s<seed>`` (``grpo-rl_only``), so the same
    arm of every seed groups together; a run outside the layout keeps its last two folder names."""
    parts = Path(path).resolve().parts
    for i in range(len(parts) - 1, -1, -1):
        if _SEED.match(parts[i]):
            return "/".join(parts[i + 1:])
    return "/".join(parts[-2:])


def claims_by_seed(evals: list[EvalRun], cfg: ClaimsConfig) -> dict[str, list[dict[str, Any]]]:
    """The claims computed on each seed's evaluations alone; {} when the runs span fewer than two seeds."""
    by_seed: dict[str, list[Path]] = defaultdict(list)
    for run in evals:
        for p in run.paths:
            s = seed_of(p)
            if s is not None:
                by_seed[s].append(p)
    if len(by_seed) < 2:
        return {}
    order = sorted(by_seed, key=lambda s: int(s[1:]))
    return {s: evaluate_claims(load_inputs(by_seed[s]).evals, cfg) for s in order}


def _figure(c: dict[str, Any]) -> str:
    if "difference" in c:
        lo, hi = c["ci"]
        return f"{c['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    if "attempts" in c:
        a, lo, hi = c["attempts"]
        v = c["verdicts"][0]
        return f"{a:.2f} [{lo:.2f}, {hi:.2f}] attempts, {v:.2f} verdicts"
    return "-"


def seeds_table(pooled: list[dict[str, Any]], by_seed: dict[str, list[dict[str, Any]]]) -> Table | None:
    if not by_seed:
        return None
    seeds = list(by_seed)
    t = Table("Claims per seed", ["claim", "pooled", *seeds],
              note="Each cell: the claim's measured effect [95% interval] (claims 1, 3, 4: accuracy difference; "
                   "claim 2: attempts per answer) and its verdict. Pooled: all seeds' questions together.")
    for c in pooled:
        row = [f"{c['claim']}. {c['title']}", f"{_figure(c)} - {c['status']}"]
        for s in seeds:
            mine = next((x for x in by_seed[s] if x["claim"] == c["claim"]), None)
            row.append(f"{_figure(mine)} - {mine['status']}" if mine else "-")
        t.rows.append(row)
    return t


# ---- did RL raise the training reward? --------------------------------------------------------------------------

def reward_points(run: TrainRun) -> list[tuple[int, float]]:
    """(step, mean training reward) of a run, by step; empty for a run that logs no reward (SFT)."""
    return sorted((int(x["step"]), float(x["reward_mean"])) for x in run.log
                  if "step" in x and isinstance(x.get("reward_mean"), (int, float)))


def _rewards(run: TrainRun) -> list[float]:
    return [r for _, r in reward_points(run)]


def grpo_runs_by_arm(trains: list[TrainRun], min_steps: int = 1) -> dict[str, list[TrainRun]]:
    """Runs that log a reward on at least ``min_steps`` steps, grouped by arm (``arm_of``), each group in seed
    order; arms sorted."""
    groups: dict[str, list[TrainRun]] = defaultdict(list)
    for tr in trains:
        if len(reward_points(tr)) >= min_steps:
            groups[arm_of(tr.path)].append(tr)
    return {arm: sorted(groups[arm], key=lambda r: str(seed_of(r.path) or r.path)) for arm in sorted(groups)}


def _windows(rewards: list[float]) -> tuple[list[float], list[float]]:
    k = max(1, round(WINDOW * len(rewards)))
    return rewards[:k], rewards[-k:]


def reward_rise(trains: list[TrainRun], resamples: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Per GRPO arm (runs grouped by folder name, one per seed): last-20% minus first-20% mean reward."""
    out = []
    for arm, runs in grpo_runs_by_arm(trains, min_steps=2).items():
        wins = [_windows(_rewards(r)) for r in runs]
        per_seed = [sum(b) / len(b) - sum(a) / len(a) for a, b in wins]
        diff = sum(per_seed) / len(per_seed)
        rng = random.Random(seed)
        stats = []
        for _ in range(resamples):
            tot = 0.0
            for a, b in wins:
                ra = [a[rng.randrange(len(a))] for _ in a]
                rb = [b[rng.randrange(len(b))] for _ in b]
                tot += sum(rb) / len(rb) - sum(ra) / len(ra)
            stats.append(tot / len(wins))
        stats.sort()
        lo, hi = percentile(stats, 0.025), percentile(stats, 0.975)
        status = HELD if lo > 0 else (DIRECTION if diff > 0 else FAILED)
        out.append({"arm": arm, "runs": len(runs), "steps": [len(_rewards(r)) for r in runs],
                    "first": sum(sum(a) / len(a) for a, _ in wins) / len(wins),
                    "last": sum(sum(b) / len(b) for _, b in wins) / len(wins),
                    "difference": diff, "ci": [lo, hi], "per_seed": per_seed, "status": status,
                    "seeds": [seed_of(r.path) or r.path.parent.name for r in runs]})
    return out


def reward_table(rows: list[dict[str, Any]]) -> Table | None:
    if not rows:
        return None
    t = Table("Did RL raise the training reward?",
              ["GRPO arm", "runs", "steps", "first 20%", "last 20%", "last - first [95% CI]", "per seed", "rose"],
              note="Mean training reward (verifier: 1 correct, 0 not) over the first and the last 20% of steps, "
                   "averaged over seeds; the interval resamples each window's steps within each seed. 'held': "
                   "the interval excludes zero.")
    for r in rows:
        lo, hi = r["ci"]
        per = ", ".join(f"{s}: {d:+.3f}" for s, d in zip(r["seeds"], r["per_seed"]))
        t.rows.append([r["arm"], str(r["runs"]), "/".join(map(str, r["steps"])), f"{r['first']:.3f}",
                       f"{r['last']:.3f}", f"{r['difference']:+.3f} [{lo:+.3f}, {hi:+.3f}]", per, r["status"]])
    return t


__all__ = ["arm_of", "claims_by_seed", "grpo_runs_by_arm", "reward_points", "reward_rise", "reward_table", "seed_of", "seeds_table"]
