"""CLI commands ``skillfactory export verl|llamafactory|accelerate``: hand the data and recipe to engines that
scale past one machine (see ``skillfactory.training.export``)."""

from __future__ import annotations

import typer

export_app = typer.Typer(help="Export data and configs for verl, LLaMA-Factory and accelerate.", no_args_is_help=True)


@export_app.command("verl")
def verl_cmd(
    task: str = typer.Option(..., "--task", help="Task name or module:Class."),
    param: list[str] = typer.Option(None, "--param", help="Task parameter NAME=VALUE (repeatable)."),
    n: int = typer.Option(None, "-n", "--n", help="Training questions (default 10240: 40 steps of 256)."),
    n_test: int = typer.Option(None, "--n-test", help="Test questions (default n/10)."),
    train_batch_size: int = typer.Option(None, "--train-batch-size",
                                         help="Prompts per GRPO step, data.train_batch_size (published 256)."),
    epochs: int = typer.Option(None, "--epochs", help="trainer.total_epochs (default 1)."),
    seed: int = typer.Option(0, "--seed"),
    model: str = typer.Option(None, "--model", help="Default MODEL in run_grpo.sh."),
    out: str = typer.Option(..., "--out", help="Output folder."),
) -> None:
    """train/test parquet + reward.py (compute_score with our verifiers) + run_grpo.sh (published settings)."""
    from rich.console import Console

    from skillfactory.commands.train import _given, _params
    from skillfactory.config import validate
    from skillfactory.training.export.verl import VerlExportConfig, export_verl

    cfg = validate(VerlExportConfig, _given(task=task, params=_params(param), n=n, n_test=n_test,
                                            train_batch_size=train_batch_size, epochs=epochs, seed=seed,
                                            model=model, out=out), "export verl")
    s = export_verl(cfg)
    Console().print(f"[bold green]verl export[/]: {s['train']} train + {s['test']} test questions -> {out}; "
                    f"{s['steps']} GRPO steps ({s['train']} rows // batch {s['train_batch_size']} x {s['epochs']} "
                    f"epoch(s)) (launch: bash {out}/run_grpo.sh)", highlight=False, soft_wrap=True)


@export_app.command("llamafactory")
def llamafactory_cmd(
    traces: str = typer.Option(..., "--traces", help="traces.jsonl, a traces stage folder, or a saved dataset."),
    out: str = typer.Option(..., "--out", help="Output folder."),
    model: str = typer.Option(None, "--model", help="model_name_or_path in the training YAML."),
    template: str = typer.Option(None, "--template", help="LLaMA-Factory template name (default qwen)."),
) -> None:
    """sharegpt dataset + dataset_info.json + sft.yaml with the published SFT settings."""
    from rich.console import Console

    from skillfactory.commands.train import _given
    from skillfactory.config import validate
    from skillfactory.training.export.llamafactory import LlamaFactoryExportConfig, export_llamafactory

    cfg = validate(LlamaFactoryExportConfig, _given(traces=traces, out=out, model=model, template=template),
                   "export llamafactory")
    s = export_llamafactory(cfg)
    Console().print(f"[bold green]LLaMA-Factory export[/]: {s['examples']} examples -> {out} "
                    f"(train: {s['command']})", highlight=False, soft_wrap=True)


@export_app.command("accelerate")
def accelerate_cmd(
    out: str = typer.Option(..., "--out", help="Output folder."),
    num_processes: int = typer.Option(None, "--num-processes", help="GPUs per machine (default 8)."),
) -> None:
    """accelerate configs (ddp, zero2, zero3, fsdp) and the commands that launch our stages with them."""
    from rich.console import Console

    from skillfactory.training.export.accelerate import AccelerateExportConfig, export_accelerate

    s = export_accelerate(AccelerateExportConfig(out=out, num_processes=num_processes))
    console = Console()
    console.print(f"[bold green]accelerate configs[/]: {', '.join(s['files'])} -> {out}", highlight=False,
                  soft_wrap=True)
    for line in s["commands"]:
        console.print(f"  {line}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``export`` sub-app."""
    app.add_typer(export_app, name="export")
