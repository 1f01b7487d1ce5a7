"""``skillfactory run RECIPE``: a whole experiment from one YAML recipe, cached and resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        recipe: Path = typer.Argument(..., help="recipe YAML (see recipes/)", exists=False),
        only: Optional[str] = typer.Option(None, "--only", help="run just this stage (name or kind, e.g. sample, grpo/rl_only)"),
        from_: Optional[str] = typer.Option(None, "--from", help="re-run this stage and everything after it"),
        dry_run: bool = typer.Option(False, "--dry-run", help="print the stage plan and its cache status; run nothing"),
        set_: Optional[list[str]] = typer.Option(None, "--set", help="override a recipe field: key.sub=value"),
    ) -> None:
        """Run every stage of a recipe: base model, sample, reflect, traces, SFT, GRPO per arm, eval, report."""
        from skillfactory.config import parse_overrides
        from skillfactory.pipeline import run_recipe

        run_recipe(recipe, only=only, from_=from_, dry_run=dry_run, overrides=parse_overrides(set_))
