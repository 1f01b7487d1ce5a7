"""``skillfactory report``: tables, plots, claims and a trace viewer from saved evaluation and training runs."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the app."""

    @app.command("report")
    def report_cmd(
        run_dirs: list[Path] = typer.Argument(..., help="Evaluation/training run folders (or a folder above them)."),
        out: Path = typer.Option(..., "--out", "-o", help="Report folder: report.md, report.html, PNG plots."),
        title: str = typer.Option("SkillFactory report", "--title"),
        train_task: str = typer.Option(None, "--train-task", help="Task the RL arms were trained on (claims 1-3)."),
        train_param: list[str] = typer.Option(None, "--train-param", help="Its parameters, KEY=VALUE (repeatable)."),
        claims_file: Path = typer.Option(None, "--claims", help="YAML/JSON of claims settings (labels, thresholds)."),
    ) -> None:
        """Write R/report.md, R/report.html and the PNG plots; reads saved files only."""
        from rich.console import Console
        from rich.markup import escape

        from skillfactory.config import load_yaml, parse_overrides
        from skillfactory.report import write_report

        claims = load_yaml(claims_file) if claims_file else {}
        if train_task:
            claims["train_task"] = train_task
        if train_param:
            claims["train_params"] = parse_overrides(train_param)
        html_path = write_report(run_dirs, out, title=title, claims=claims)
        Console(stderr=True).print("[green]report[/] " + escape(f"{out / 'report.md'} and {html_path}"),
                                   highlight=False, soft_wrap=True)
