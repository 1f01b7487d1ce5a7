"""CLI of the toy base model: ``skillfactory toy build`` and ``skillfactory toy eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

toy_app = typer.Typer(help="The embedded tiny base model: build it (cached) and measure its premise.",
                      no_args_is_help=True)


@toy_app.command("build")
def build(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also copy the model to this folder."),
    preset: str = typer.Option("tiny", "--preset", help="micro (tests, seconds) or tiny (the quickstart's model)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the corpus, initialisation and batch order."),
    force: bool = typer.Option(False, "--force", help="Build from scratch even if the cache or the package "
                                                      "(prebuilt tiny, seed 0) holds this model."),
) -> None:
    """Build (or fetch from the cache, or copy the prebuilt one shipped in the package) the toy model; prints its
    folder."""
    from skillfactory.toy.build import build_toy_model, cached_path, is_built, prebuilt_path

    hit = not force and is_built(cached_path(preset, seed))
    shipped = not force and not hit and prebuilt_path(preset, seed) is not None
    path = build_toy_model(preset=preset, seed=seed, out=out, force=force)
    typer.echo(f"{'cached' if hit else 'prebuilt' if shipped else 'built'}: {path}")


@toy_app.command("eval")
def evaluate(
    model: Path = typer.Argument(..., help="Model folder (a toy model or any HF causal LM with a chat template)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Also save the figures as JSON here."),
    questions: int = typer.Option(32, "--questions", "-n", help="Test questions per task and difficulty."),
    k: int = typer.Option(16, "--k", help="Samples per question (over the 4 prompt variants)."),
    temperature: float = typer.Option(1.0, "--temperature", help="Sampling temperature."),
    reflections: int = typer.Option(256, "--reflections", help="Own attempts to reflect on."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Tokens per attempt / reflection."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Attempt accuracy (pass@1, pass@k) per task and difficulty, and verdict accuracy on its own attempts."""
    from rich.console import Console

    from skillfactory.records import atomic_write_text
    from skillfactory.toy.eval import ToyEvalConfig, evaluate_toy, render_table

    import json

    from skillfactory.errors import SkillFactoryError

    if not model.is_dir():
        raise SkillFactoryError(f"toy eval: model folder {model} does not exist")
    cfg = ToyEvalConfig(model=str(model), questions=questions, k=k, temperature=temperature,
                        reflections=reflections, max_new_tokens=max_new_tokens, seed=seed)
    result = evaluate_toy(cfg)
    render_table(result, Console())
    if out is not None:
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")


def register(app: typer.Typer) -> None:
    """Add the ``toy`` sub-app."""
    app.add_typer(toy_app, name="toy")
