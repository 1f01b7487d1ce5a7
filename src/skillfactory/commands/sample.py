"""CLI command of the sampling stage: ``skillfactory sample``.

The config is built from (lowest to highest priority) the stage defaults, ``--config FILE.yaml``, the named
options, then ``--set key=value`` overrides; torch is imported only when the command runs.
"""

from __future__ import annotations

from typing import Any

import typer

from skillfactory.config import deep_merge, parse_overrides


def given(**options: Any) -> dict[str, Any]:
    """The options the user actually passed (typer gives None for the others)."""
    return {k: v for k, v in options.items() if v is not None}


def backend_flags(flags: dict[str, Any], backend: str | None, batch_size: int | None) -> dict[str, Any]:
    if backend is not None:
        flags["backend"] = backend
    if batch_size is not None:
        flags["backend_options"] = {"batch_size": batch_size}
    return flags


def executor_flags(flags: dict[str, Any], executor: str | None, replicas: int | None,
                   ray_address: str | None) -> dict[str, Any]:
    """``--executor/--replicas/--ray-address`` as the config's ``executor:`` section (validated there)."""
    section = given(name=executor, replicas=replicas, address=ray_address)
    if section:
        flags["executor"] = section
    return flags


def task_params(pairs: list[str] | None) -> dict[str, Any]:
    """Task parameters from repeated ``--param NAME=VALUE`` flags (one parser for every command)."""
    return parse_overrides(pairs)


def register(app: typer.Typer) -> None:
    """Add ``sample`` to the app."""

    @app.command("sample")
    def sample_cmd(
        model: str = typer.Option(None, "--model", help="Model folder (hf, vllm) or served model name (openai)."),
        task: str = typer.Option(None, "--task", help="Task name (skillfactory tasks) or module:Class."),
        param: list[str] = typer.Option(None, "--param", help="Task parameter NAME=VALUE (repeatable)."),
        n: int = typer.Option(None, "-n", "--n-questions", help="Questions to generate."),
        per_variant: int = typer.Option(None, "--per-variant", help="Samples per question and prompt variant."),
        seed: int = typer.Option(None, "--seed"),
        split: str = typer.Option(None, "--split", help="train, validation or test."),
        out: str = typer.Option(None, "--out", help="Output folder (re-run the same command to resume)."),
        backend: str = typer.Option(None, "--backend", help="hf | vllm | openai"),
        temperature: float = typer.Option(None, "--temperature", help="0 = greedy."),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens"),
        batch_size: int = typer.Option(None, "--batch-size", help="Sequences in flight (hf backend)."),
        executor: str = typer.Option(None, "--executor", help="local (this process) | ray (replicas on Ray)."),
        replicas: int = typer.Option(None, "--replicas", help="Model replicas under --executor ray."),
        ray_address: str = typer.Option(None, "--ray-address", help="Join a Ray cluster (auto, HOST:PORT); "
                                        "default: start a local Ray."),
        config: str = typer.Option(None, "--config", help="YAML file with SampleConfig fields."),
        set_: list[str] = typer.Option(None, "--set", help="Override any field: --set top_p=0.95 (repeatable)."),
    ) -> None:
        """Sample responses to task questions in the 4 prompt variants, verified; writes OUT/samples.jsonl."""
        from skillfactory.config import load_config
        from skillfactory.sampling import SampleConfig, sample

        flags = given(model=model, task=task, n=n, per_variant=per_variant, seed=seed, split=split, out=out,
                      temperature=temperature, max_new_tokens=max_new_tokens)
        if param:
            flags["params"] = task_params(param)
        flags = executor_flags(backend_flags(flags, backend, batch_size), executor, replicas, ray_address)
        sample(load_config(SampleConfig, config, deep_merge(flags, parse_overrides(set_))))
