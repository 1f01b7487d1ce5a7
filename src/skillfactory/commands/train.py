"""CLI commands of the training stages: ``skillfactory sft`` and ``skillfactory grpo``.

Each builds its config from (lowest to highest priority) the stage defaults, ``--config FILE.yaml``, the named
options, then ``--set key=value`` overrides; torch/trl are imported only when a command runs.
"""

from __future__ import annotations

from typing import Any

import typer

from skillfactory.config import deep_merge, parse_overrides


def _given(**options: Any) -> dict[str, Any]:
    """The options the user actually passed (typer gives None for the others)."""
    return {k: v for k, v in options.items() if v is not None}


def _params(pairs: list[str] | None) -> dict[str, Any]:
    """Task parameters from repeated ``--param NAME=VALUE`` flags (one parser for every command)."""
    return parse_overrides(pairs)


def _print_summary(summary: dict[str, Any], keys: tuple[str, ...]) -> None:
    from rich.console import Console

    figures = ", ".join(f"{k}={summary[k]:.4g}" if isinstance(summary.get(k), float) else f"{k}={summary.get(k)}"
                        for k in keys)
    Console().print(f"[bold green]{summary['stage']} done[/]: {figures} -> {summary['final_model']}", highlight=False,
                    soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``sft`` and ``grpo`` to the app."""

    @app.command("sft")
    def sft_cmd(
        model: str = typer.Option(None, "--model", help="Base model folder (Hugging Face format, with tokenizer)."),
        traces: str = typer.Option(None, "--traces", help="traces.jsonl, a traces stage folder, or a saved dataset."),
        out: str = typer.Option(None, "--out", help="Output folder; the trained model goes to OUT/final/."),
        preset: str = typer.Option(None, "--preset", help="published (LR 1e-6, 2 epochs) or tiny (toy model)."),
        max_steps: int = typer.Option(None, "--max-steps", help="Stop after N optimizer steps (overrides epochs)."),
        epochs: float = typer.Option(None, "--epochs"),
        learning_rate: float = typer.Option(None, "--lr"),
        config: str = typer.Option(None, "--config", help="YAML file with SFTRunConfig fields."),
        set_: list[str] = typer.Option(None, "--set", help="Override any field: --set lora.r=8 (repeatable)."),
    ) -> None:
        """Supervised fine-tuning on silver traces (TRL SFTTrainer, loss on the assistant turn only)."""
        from skillfactory.config import load_config
        from skillfactory.console import library_log
        from skillfactory.training.sft import SFTRunConfig, run_sft

        flags = _given(model=model, traces=traces, out=out, preset=preset, max_steps=max_steps, epochs=epochs,
                       learning_rate=learning_rate)
        cfg = load_config(SFTRunConfig, config, deep_merge(flags, parse_overrides(set_)))
        with library_log(cfg.out):  # library chatter and warnings to OUT/log.txt, as under `skillfactory run`
            summary = run_sft(cfg)
        _print_summary(summary, ("steps", "trained_on", "skipped_too_long", "first_loss", "last_loss"))

    @app.command("grpo")
    def grpo_cmd(
        model: str = typer.Option(None, "--model", help="Model folder to reinforce (base or SFT model)."),
        task: str = typer.Option(None, "--task", help="Task name (skillfactory tasks) or module:Class."),
        param: list[str] = typer.Option(None, "--param", help="Task parameter NAME=VALUE (repeatable)."),
        out: str = typer.Option(None, "--out", help="Output folder; the trained model goes to OUT/final/."),
        preset: str = typer.Option(None, "--preset", help="published (16 rollouts, LR 1e-6) or tiny (toy model)."),
        n_questions: int = typer.Option(None, "-n", "--n-questions", help="Training questions to generate."),
        max_steps: int = typer.Option(None, "--max-steps", help="Stop after N optimizer steps."),
        num_generations: int = typer.Option(None, "--num-generations", help="Rollouts per prompt."),
        config: str = typer.Option(None, "--config", help="YAML file with GRPORunConfig fields."),
        set_: list[str] = typer.Option(None, "--set", help="Override any field: --set beta=0 (repeatable)."),
    ) -> None:
        """GRPO with the task verifier as a binary reward (TRL GRPOTrainer)."""
        from skillfactory.config import load_config
        from skillfactory.console import library_log
        from skillfactory.training.grpo import GRPORunConfig, run_grpo

        flags = _given(model=model, task=task, out=out, preset=preset, n_questions=n_questions,
                       max_steps=max_steps, num_generations=num_generations)
        if param:
            flags["params"] = _params(param)
        cfg = load_config(GRPORunConfig, config, deep_merge(flags, parse_overrides(set_)))
        with library_log(cfg.out):
            summary = run_grpo(cfg)
        _print_summary(summary, ("steps", "first_reward", "last_reward", "mean_reward"))
