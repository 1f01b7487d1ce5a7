"""CLI commands of the train stage (to be filled in by the stage's issue)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the app."""
