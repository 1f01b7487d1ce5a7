"""One-command experiments: a recipe -> a plan of stages -> cached, resumable execution -> a report.

    >>> from skillfactory.pipeline import run_recipe
    >>> run_recipe("recipes/quickstart.yaml", dry_run=True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from skillfactory.console import log_width
from skillfactory.locking import folder_lock
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
    with folder_lock(recipe.out_dir, "run"):  # a second run of this recipe's folder is refused while one lives
        outputs = execute(stages, console, only=only, from_=from_)
    for name, path in outputs.items():
        if name.endswith("report"):
            print_headline(Path(path), console)
    return outputs


def _section(markdown: str, heading: str) -> str:
    """The text of one markdown section (from its heading to the next heading of the same or higher level)."""
    lines = markdown.splitlines()
    level = heading.split(" ")[0]
    for i, line in enumerate(lines):
        if line.strip() == heading:
            out = [line]
            for nxt in lines[i + 1:]:
                if nxt.startswith("#") and len(nxt.split(" ")[0]) <= len(level):
                    break
                out.append(nxt)
            return "\n".join(out).strip()
    return ""


def print_headline(report: Path, console: Console) -> None:
    """End of a run: where the report is, the claims verdicts and the accuracy table."""
    from rich.markdown import Markdown

    folder = report.parent if report.suffix == ".html" else report
    md_path = folder / "report.md"
    if not md_path.exists():
        return
    text = md_path.read_text()
    with log_width(console):  # off a terminal each interval of the table on one line
        for heading in ("## Claims", "### Accuracy by task and difficulty"):
            section = _section(text, heading)
            if section:
                console.print(Markdown(section))
    console.print(f"[bold]report:[/] {folder / 'report.html'} (and report.md, PNG plots)", soft_wrap=True)


__all__ = ["Recipe", "Stage", "build_plan", "load_recipe", "run_recipe"]
