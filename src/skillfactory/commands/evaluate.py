"""``skillfactory eval``: evaluate a model on a suite (accuracy with intervals, pass@k, skill usage, budget forcing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def _csv_ints(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        from skillfactory.config import ConfigError

        raise ConfigError(f"{option}: expected comma-separated integers like 0,1,2,4, got {text!r}") from None


def register(app: typer.Typer) -> None:
    """Add the ``eval`` command to the app."""

    @app.command("eval")
    def eval_cmd(
        model: str = typer.Option(None, "--model", "-m", help="Model folder (hf/vllm) or served model name (openai)."),
        suite: str = typer.Option(None, "--suite", help="Suite YAML file or packaged suite name (default, quick)."),
        out: Path = typer.Option(None, "--out", "-o", help="Output folder (re-run the same command to resume)."),
        label: str = typer.Option(None, "--label", help="Name of this model in reports: base, rl_only, skillfactory..."),
        backend: str = typer.Option(None, "--backend", help="hf | vllm | openai | module:factory."),
        seed: int = typer.Option(None, "--seed", help="Seed of the test questions and of sampling."),
        temperature: float = typer.Option(None, "--temperature"),
        batch_size: int = typer.Option(None, "--batch-size", help="Backend option: sequences in flight."),
        executor: str = typer.Option(None, "--executor", help="local (this process) | ray (replicas on Ray)."),
        replicas: int = typer.Option(None, "--replicas", help="Model replicas under --executor ray."),
        ray_address: str = typer.Option(None, "--ray-address", help="Join a Ray cluster (auto, HOST:PORT); "
                                        "default: start a local Ray."),
        budget_forcing: bool = typer.Option(None, "--budget-forcing/--no-budget-forcing"),
        budgets: str = typer.Option(None, "--budgets", help="Forced continuations, e.g. 0,1,2,4."),
        token_budgets: str = typer.Option(None, "--token-budgets", help="Thinking-token budgets, e.g. 256,512."),
        bf_entries: list[str] = typer.Option(None, "--bf-entry", help="A suite entry (label or task) to budget-force; "
                                             "repeatable (default: every entry)."),
        config: Path = typer.Option(None, "--config", "-c", help="EvalConfig YAML; options and --set override it."),
        overrides: list[str] = typer.Option(None, "--set", help="Config override KEY=VALUE (e.g. budget_forcing.samples=2)."),
    ) -> None:
        """Evaluate a model on a suite; writes OUT/results.json, OUT/samples.jsonl and budget-forcing curves."""
        from skillfactory.commands.sample import executor_flags
        from skillfactory.config import deep_merge, load_yaml, parse_overrides, validate
        from skillfactory.evaluation.evaluate import EvalConfig, evaluate

        data: dict[str, Any] = load_yaml(config) if config else {}
        cli: dict[str, Any] = {}
        for key, value in (("model", model), ("suite", suite), ("out", str(out) if out else None), ("label", label),
                           ("backend", backend), ("seed", seed), ("temperature", temperature)):
            if value is not None:
                cli[key] = value
        if batch_size is not None:
            cli["backend_options"] = {"batch_size": batch_size}
        executor_flags(cli, executor, replicas, ray_address)
        bf: dict[str, Any] = {}
        if budget_forcing is not None:
            bf["enabled"] = budget_forcing
        if (b := _csv_ints(budgets, "--budgets")) is not None:
            bf["budgets"] = b
            bf.setdefault("enabled", True)
        if (t := _csv_ints(token_budgets, "--token-budgets")) is not None:
            bf["token_budgets"] = t
            bf.setdefault("enabled", True)
        if bf_entries:
            bf["entries"] = list(bf_entries)
        if bf:
            cli["budget_forcing"] = bf
        merged = deep_merge(deep_merge(data, cli), parse_overrides(overrides))
        for required in ("model", "out"):
            if required not in merged:
                from skillfactory.config import ConfigError

                raise ConfigError(f"missing --{required} (or '{required}:' in the config file)")
        evaluate(validate(EvalConfig, merged, str(config) if config else "eval options"))
