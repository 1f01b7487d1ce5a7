"""One-command experiments: a recipe -> a plan of stages -> cached, resumable execution -> a report.

    >>> from skillfactory.pipeline import run_recipe
    >>> run_recipe("recipes/quickstart.yaml", dry_run=True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from skillfactory.pipeline.plan import build_plan
from skillfactory.pipeline.recipe import Recipe, load_recipe
from skillfactory.pipeline.runner import Stage, execute, print_plan, select


def run_recipe(
    path: str | Path,
    *,
    only: str | None = None,
    from_: str | None = None,
    dry_run: bool = False,
    overrides: dict[str, Any] | None = None,
    console: Console | None = None,
) -> dict[str, Path]:
    """Run (or with ``dry_run`` only print) the plan of a recipe; returns finished stages' outputs."""
    console = console or Console()
    recipe = load_recipe(path, overrides)
    stages = build_plan(recipe)
    if dry_run:
        run, force = select(stages, only, from_)
        print_plan(stages, console, run, force)
        return {}
    return execute(stages, console, only=only, from_=from_)


__all__ = ["Recipe", "Stage", "build_plan", "load_recipe", "run_recipe"]
