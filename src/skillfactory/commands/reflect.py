"""CLI command of the reflection stage: ``skillfactory reflect``.

Config priority as for ``sample``: defaults < ``--config FILE.yaml`` < named options < ``--set key=value``.
"""

from __future__ import annotations

import typer

from skillfactory.commands.sample import backend_flags, executor_flags, given
from skillfactory.config import deep_merge, parse_overrides


def register(app: typer.Typer) -> None:
    """Add ``reflect`` to the app."""

    @app.command("reflect")
    def reflect_cmd(
        samples: str = typer.Option(None, "--samples", help="samples.jsonl written by `skillfactory sample`."),
        model: str = typer.Option(None, "--model", help="Reflection model (default: the model that sampled)."),
        per_sample: int = typer.Option(None, "--per-sample", help="Reflections per sample."),
        seed: int = typer.Option(None, "--seed"),
        out: str = typer.Option(None, "--out", help="Output folder (re-run the same command to resume)."),
        backend: str = typer.Option(None, "--backend", help="hf | vllm | openai (default: the sampling run's)."),
        temperature: float = typer.Option(None, "--temperature", help="0 = greedy."),
        max_new_tokens: int = typer.Option(None, "--max-new-tokens"),
        batch_size: int = typer.Option(None, "--batch-size", help="Sequences in flight (hf backend)."),
        executor: str = typer.Option(None, "--executor", help="local (this process) | ray (replicas on Ray)."),
        replicas: int = typer.Option(None, "--replicas", help="Model replicas under --executor ray."),
        ray_address: str = typer.Option(None, "--ray-address", help="Join a Ray cluster (auto, HOST:PORT); "
                                        "default: start a local Ray."),
        config: str = typer.Option(None, "--config", help="YAML file with ReflectConfig fields."),
        set_: list[str] = typer.Option(None, "--set", help="Override any field: --set top_p=0.95 (repeatable)."),
    ) -> None:
        """Reflect on each sample (verdict Correct/Incorrect), keeping true verdicts; writes OUT/reflections.jsonl."""
        from skillfactory.config import load_config
        from skillfactory.reflection import ReflectConfig, reflect

        flags = given(samples=samples, model=model, per_sample=per_sample, seed=seed, out=out,
                      temperature=temperature, max_new_tokens=max_new_tokens)
        flags = executor_flags(backend_flags(flags, backend, batch_size), executor, replicas, ray_address)
        reflect(load_config(ReflectConfig, config, deep_merge(flags, parse_overrides(set_))))
