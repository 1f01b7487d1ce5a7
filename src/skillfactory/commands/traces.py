"""CLI commands of the traces stage: ``skillfactory traces build`` and ``skillfactory traces show``.

Config priority: defaults < ``--config FILE.yaml`` < named options < ``--set key=value``.
"""

from __future__ import annotations

from typing import Any

import typer

traces_app = typer.Typer(help="Build silver traces (attempts + their checks, rearranged into one answer) and look at them.", no_args_is_help=True)


def parse_formats(text: str) -> list[str] | dict[str, float]:
    """``"*C_full,*CC"`` -> a list (every format for every question); ``"*C:2,*CC:1"`` -> weights (one each)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not any(":" in p for p in parts):
        return parts
    from skillfactory.config import ConfigError

    weights: dict[str, float] = {}
    for p in parts:
        name, _, w = p.rpartition(":")
        try:
            weights[name.strip()] = float(w)
        except ValueError:
            raise ConfigError(f"--formats: expected NAME:WEIGHT like '*C:2', got {p!r}") from None
    return weights


def _columns(pairs: list[str] | None) -> dict[str, str]:
    from skillfactory.config import ConfigError

    out = {}
    for pair in pairs or []:
        field, sep, name = pair.partition("=")
        if not sep:
            raise ConfigError(f"--column {pair!r}: expected FIELD=COLUMN, e.g. response=completions")
        out[field.strip()] = name.strip()
    return out


@traces_app.command("build")
def build_cmd(
    samples: str = typer.Option(None, "--samples", help="samples.jsonl written by `skillfactory sample`."),
    reflections: str = typer.Option(None, "--reflections", help="reflections.jsonl written by `skillfactory reflect`."),
    raw: str = typer.Option(None, "--raw", help="A parquet/JSONL file in the published raw layout (instead)."),
    formats: str = typer.Option(None, "--formats", help='Formats: "*C_full,*CC" (all) or "*C:2,*CC:1" (weights).'),
    max_responses: int = typer.Option(None, "--max-responses", help="Most <sample> blocks per trace (default 5)."),
    repeats: int = typer.Option(None, "--repeats", help="Traces per question and format."),
    distinct_variants: bool = typer.Option(None, "--distinct-variants/--any-variants",
                                           help="Attempts of a trace from different prompt variants."),
    seed: int = typer.Option(None, "--seed"),
    tokenizer: str = typer.Option(None, "--tokenizer", help="Local tokenizer folder: token-length percentiles."),
    outputs: str = typer.Option(None, "--outputs", help='What to write: "jsonl,dataset,llamafactory" (default all '
                                                        'three); "dataset" alone as for a Hub push.'),
    column: list[str] = typer.Option(None, "--column", help="Raw column name FIELD=NAME (repeatable)."),
    out: str = typer.Option(None, "--out", "-o", help="Output folder."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if OUT holds this finished build."),
    workers: int = typer.Option(None, "--workers", min=1,
                                help="Processes building traces (default: one per CPU, at most 4, for large "
                                     "builds). Any number gives the same files."),
    config: str = typer.Option(None, "--config", help="YAML file with TraceConfig fields."),
    set_: list[str] = typer.Option(None, "--set", help="Override any field: --set repeats=2 (repeatable)."),
) -> None:
    """Build traces; writes OUT/traces.jsonl, OUT/dataset/, OUT/llamafactory/ (those of --outputs), OUT/summary.json."""
    from skillfactory.config import deep_merge, load_config, parse_overrides
    from skillfactory.traces.build import TraceConfig, build_traces

    flags: dict[str, Any] = {k: v for k, v in dict(
        samples=samples, reflections=reflections, raw=raw, max_responses=max_responses, repeats=repeats,
        distinct_variants=distinct_variants, seed=seed, tokenizer=tokenizer, outputs=outputs, out=out).items()
        if v is not None}
    if formats is not None:
        flags["formats"] = parse_formats(formats)
    if column:
        flags["columns"] = _columns(column)
    build_traces(load_config(TraceConfig, config, deep_merge(flags, parse_overrides(set_))), force=force,
                 workers=workers)


@traces_app.command("show")
def show_cmd(
    path: str = typer.Argument(..., help="traces.jsonl or a traces output folder."),
    n: int = typer.Option(3, "-n", help="How many traces."),
    start: int = typer.Option(0, "--start", help="Skip this many (matching) traces first."),
    fmt: str = typer.Option(None, "--format", help="Only traces of this format, e.g. '*C*IC'."),
) -> None:
    """Pretty-print traces with tags, verdicts and glue phrases coloured."""
    from skillfactory.traces.show import show_traces

    show_traces(path, n=n, start=start, fmt=fmt)


def register(app: typer.Typer) -> None:
    """Add the ``traces`` sub-app to the app."""
    app.add_typer(traces_app, name="traces")
