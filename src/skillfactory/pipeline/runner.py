"""Run a plan of stages with caching and resume.

Each stage folder gets two small marker files, written atomically:
- ``.stage-pending.json`` while the stage runs: its cache key. A re-run with the same key *resumes* the stage
  (every stage function resumes from what its folder holds); a different key means the settings changed, so
  the folder's partial work is stale and is cleared first.
- ``.stage-done.json`` when it finished: its cache key, seconds taken, and the stage's output path. A re-run
  with the same key skips the stage; a different key re-runs it (and, because keys chain through inputs,
  exactly the stages downstream of a changed setting).

The console shows a rule per stage, the stage's own progress bar and summary, and a done line; what the libraries
log (and Python warnings) goes to the stage folder's ``log.txt`` (``skillfactory.console.library_log``).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from skillfactory.artifacts import cache_key
from skillfactory.console import library_log, log_width
from skillfactory.errors import SkillFactoryError
from skillfactory.records import atomic_write_text

DONE, PENDING = ".stage-done.json", ".stage-pending.json"


class PlanError(SkillFactoryError):
    """A plan that cannot run as asked (unknown stage name, missing inputs for --only)."""


@dataclass
class Stage:
    """One node of the experiment graph.

    ``settings`` is everything that changes the stage's result apart from its inputs; the cache key hashes the
    settings with the keys of the stages it depends on. ``run(stage, inputs)`` does the work and returns the
    stage's output path; ``inputs`` maps each dependency's name to its output path, in the order of
    ``deps`` (a stage whose inputs have roles - samples, then reflections - takes them by position).
    """

    name: str
    kind: str
    out: Path
    settings: dict[str, Any]
    run: Callable[[Stage, dict[str, Path]], Path]
    deps: list[str] = field(default_factory=list)
    key: str = ""
    launch: Any = None  # where it runs (pipeline.launch.LauncherSpec); not part of the key: it does not change results


def assign_keys(stages: list[Stage]) -> None:
    by_name = {s.name: s for s in stages}
    for s in stages:  # stages are listed in dependency order
        s.key = cache_key({"kind": s.kind, "settings": s.settings, "deps": {d: by_name[d].key for d in s.deps}})


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def stage_status(stage: Stage) -> str:
    """``cached`` (done with this key), ``resume`` (interrupted with this key), ``stale`` or ``new``."""
    done = _read(stage.out / DONE)
    if done and done.get("key") == stage.key:
        return "cached" if Path(done.get("output", "")).exists() else "stale"
    pending = _read(stage.out / PENDING)
    if pending and pending.get("key") == stage.key:
        return "resume"
    return "stale" if stage.out.exists() and any(stage.out.iterdir()) else "new"


def output_of(stage: Stage) -> Path:
    done = _read(stage.out / DONE)
    if not done:
        raise PlanError(f"stage {stage.name!r} has not finished (no {stage.out / DONE}); run it first")
    return Path(done["output"])


def select(stages: list[Stage], only: str | None, from_: str | None) -> tuple[set[str], set[str]]:
    """Names to run, and names to force (re-run even if cached)."""
    names = [s.name for s in stages]
    kinds = {s.kind for s in stages}

    def match(pattern: str) -> list[str]:
        hits = [s.name for s in stages if s.name == pattern or s.kind == pattern or s.name.startswith(pattern + "/")]
        if not hits:
            raise PlanError(f"no stage named {pattern!r}; stages: {', '.join(names)} (or a kind: {', '.join(sorted(kinds))})")
        return hits

    run = set(names)
    force: set[str] = set()
    if only:
        run = set(match(only))
    if from_:
        start = set(match(from_))
        downstream = set(start)
        for s in stages:
            if any(d in downstream for d in s.deps):
                downstream.add(s.name)
        force = downstream
    return run, force


def print_plan(stages: list[Stage], console: Console, run: set[str] | None = None, force: set[str] | None = None) -> None:
    table = Table(title="plan", show_lines=False)
    for col in ("#", "stage", "status"):
        table.add_column(col)
    for col in ("inputs", "folder"):  # a name or folder cut short ("runs/quickstart/s…") says nothing: folded
        table.add_column(col, overflow="fold")
    for i, s in enumerate(stages, 1):
        status = stage_status(s)
        if force and s.name in force:
            status = "re-run (--from)"
        if run is not None and s.name not in run:
            status = f"skip ({status})"
        table.add_row(str(i), s.name, status, ", ".join(s.deps) or "-", str(s.out))
    with log_width(console):
        console.print(table)


def execute(stages: list[Stage], console: Console, only: str | None = None, from_: str | None = None) -> dict[str, Path]:
    """Run the selected stages in order; returns every finished stage's output path."""
    run, force = select(stages, only, from_)
    outputs: dict[str, Path] = {}
    total = len([s for s in stages if s.name in run])
    done_count = 0
    for s in stages:
        if s.name not in run:
            if stage_status(s) == "cached":
                outputs[s.name] = output_of(s)
            continue
        done_count += 1
        missing = [d for d in s.deps if d not in outputs]
        if missing:
            raise PlanError(f"stage {s.name!r} needs {', '.join(missing)} finished first; run without --only")
        status = "forced" if s.name in force else stage_status(s)
        header = f"[{done_count}/{total}] {s.name}"
        if status == "cached":
            outputs[s.name] = output_of(s)
            console.print(f"[dim]{header}: cached ({s.out})[/]", soft_wrap=True)
            continue
        if status in ("stale", "forced", "new") and s.out.exists():
            shutil.rmtree(s.out)  # settings or inputs changed: the old result is derived data of another run
        s.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(s.out / PENDING, json.dumps({"key": s.key}))
        console.rule(f"{header}{' (resuming)' if status == 'resume' else ''}")
        t0 = time.perf_counter()
        with library_log(s.out):  # library messages and warnings to the stage's log.txt, not the console
            out = s.run(s, {d: outputs[d] for d in s.deps})
        seconds = time.perf_counter() - t0
        atomic_write_text(s.out / DONE, json.dumps({"key": s.key, "output": str(out), "seconds": round(seconds, 1)}))
        (s.out / PENDING).unlink(missing_ok=True)
        outputs[s.name] = out
        console.print(f"[green]{s.name} done[/] in {seconds:.0f} s -> {out}", soft_wrap=True)
    return outputs
