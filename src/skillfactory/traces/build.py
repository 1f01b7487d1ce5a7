"""The traces stage: rearrange a model's own attempts and true reflections into silver traces.

    >>> cfg = TraceConfig(samples="run/sample/samples.jsonl", reflections="run/reflect/reflections.jsonl",
    ...                   formats=["*C_full"], max_responses=5, seed=0, out="run/traces")
    >>> summary = build_traces(cfg)   # OUT/traces.jsonl, OUT/dataset/, OUT/llamafactory/, OUT/summary.json

``outputs`` chooses which of the three are written (e.g. ``["dataset"]`` for a Hub push only); SFT, ``traces
show`` and the token lengths read the JSONL or, without it, the dataset.

Determinism: every random choice of a trace comes from ``Random(f"{seed}/{question_id}/{format}/{repeat}/{n}")``
and questions are visited in sorted order, so the same inputs and seed give byte-identical files, and a
question's traces do not change when other questions are added. ``no_reflection`` is seeded like ``*C_full``,
so the ablation shows the same attempts as the main format, without the reflections.

Resume: a finished build (manifest with the same config and the same input files) is not redone.
"""

from __future__ import annotations

import difflib
import gc
import json
import random
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from skillfactory.artifacts import cache_key, read_manifest, write_manifest
from skillfactory.console import StepProgress
from skillfactory.locking import locks_folder
from skillfactory.records import SCHEMA_VERSION, atomic_write_text
from skillfactory.traces.clean import TextScreen
from skillfactory.traces.formats import CORRECT_FORMATS, FORMATS, FULL_FORMATS, MIN_BLOCKS, choose_n, render, select
from skillfactory.traces.outputs import (
    ENCODE_EVERY, OUTPUTS, Encoded, Handed, TraceRow, TraceWriter, encode, trace_batches,
)
from skillfactory.traces.parallel import default_workers, forkable, handoff_folder, ordered_map
from skillfactory.traces.raw import RawColumns, load_raw
from skillfactory.traces.sources import Corpus, Unit, load_records
from skillfactory.traces.summary import Tally, token_lengths

STAGE = "traces"


class TraceConfig(BaseModel):
    """Settings of the traces stage. Give ``samples`` + ``reflections`` (our stages' outputs) or ``raw``."""

    model_config = ConfigDict(extra="forbid")

    samples: str | None = None  # samples.jsonl of the sampling stage
    reflections: str | None = None  # reflections.jsonl of the reflection stage
    raw: str | None = None  # a parquet/JSONL file in the published raw layout, instead of samples+reflections
    columns: RawColumns = Field(default_factory=RawColumns)  # column names of the raw file
    formats: list[str] | dict[str, float] = Field(default_factory=lambda: ["*C_full"])
    # list: every format for every question; {format: weight}: one format per question and repeat, drawn by weight
    max_responses: int = Field(5, ge=1, le=64)  # most <sample> blocks in one trace (published default 5)
    repeats: int = Field(1, ge=1, le=100)  # traces per question and format (each drawn afresh)
    distinct_variants: bool = False  # all attempts of a trace from different prompt variants
    #: glue phrases from each pool's first N only (None: every phrase, as published). A model too small to learn
    #: every wording garbles them (measured on the toy model: 43-72% of its glue lines verbatim after SFT)
    glue_pool_size: int | None = Field(None, ge=1)
    seed: int = 0
    #: which files to write (traces.jsonl, the Hugging Face dataset, the LLaMA-Factory export); SFT reads the
    #: first or the second, so one of them is needed
    outputs: list[Literal["jsonl", "dataset", "llamafactory"]] = Field(default_factory=lambda: list(OUTPUTS))
    # a local model/tokenizer folder: report token-length percentiles, and refuse texts holding any of its
    # special tokens (the chat tokens of the common families are refused without it, see clean.py)
    tokenizer: str | None = None
    out: str  # output folder

    @field_validator("formats", "outputs", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return [f.strip() for f in v.split(",") if f.strip()] if isinstance(v, str) else v

    @field_validator("outputs")
    @classmethod
    def _readable(cls, v: list[str]) -> list[str]:
        if "jsonl" not in v and "dataset" not in v:
            raise ValueError("write 'jsonl' or 'dataset' (or both): the traces are read back from one of them")
        if len(set(v)) != len(v):
            raise ValueError("an output is listed twice")
        return [o for o in OUTPUTS if o in v]  # in one order, so the same outputs are the same config

    @field_validator("formats")
    @classmethod
    def _known(cls, v: list[str] | dict[str, float]) -> list[str] | dict[str, float]:
        names = list(v)
        if not names:
            raise ValueError(f"give at least one format ({', '.join(FORMATS)})")
        for name in names:
            if name not in FORMATS:
                close = difflib.get_close_matches(name, FORMATS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown trace format {name!r}{hint} (formats: {', '.join(FORMATS)})")
        if isinstance(v, dict) and any(w <= 0 for w in v.values()):
            raise ValueError("format weights must be > 0")
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError("a format is listed twice; use repeats for more traces per question")
        return v

    @model_validator(mode="after")
    def _check(self) -> TraceConfig:
        if self.raw is None and (self.samples is None or self.reflections is None):
            raise ValueError("give 'raw' (a published-layout file) or both 'samples' and 'reflections'")
        if self.raw is not None and (self.samples is not None or self.reflections is not None):
            raise ValueError("give either 'raw' or 'samples' + 'reflections', not both")
        for name in self.formats:
            if MIN_BLOCKS[name] > self.max_responses:
                raise ValueError(f"max_responses={self.max_responses} is too small for format {name!r}, "
                                 f"which needs {MIN_BLOCKS[name]} <sample> blocks")
        return self


@locks_folder("traces")
def build_traces(cfg: TraceConfig, *, force: bool = False, progress: bool = True,
                 workers: int | None = None) -> dict[str, Any]:
    """Build the traces of ``cfg`` into ``cfg.out``; returns the summary (also in ``OUT/summary.json``).

    ``workers``: processes building traces (None: one per CPU, at most 4, once there are a few thousand
    questions; see parallel.py). Any number gives the same bytes, so it is not part of the config.
    """
    out = Path(cfg.out)
    inputs = _inputs(cfg)
    fingerprints = {k: _fingerprint(Path(p)) for k, p in inputs.items()}
    done = _finished(out, cfg, inputs, fingerprints)
    if done is not None and not force:
        return done

    t0 = time.perf_counter()
    screen = TextScreen.for_tokenizer(cfg.tokenizer)
    corpus = (load_raw(cfg.raw, cfg.columns, screen) if cfg.raw
              else load_records(cfg.samples, cfg.reflections, screen))
    t_load = time.perf_counter() - t0
    tally = Tally()
    out.mkdir(parents=True, exist_ok=True)
    chunks = _chunks(len(corpus.units), cfg)
    workers = forkable(workers) if workers else default_workers(len(chunks), MIN_CHUNKS_FOR_WORKERS)
    # the corpus is up to ~10^6 long-lived objects (our own samples' pools; the raw reader keeps columns and
    # makes pools in the workers): frozen, the collector does not walk them again during the build, nor, in a
    # forked worker, touch and so copy their pages (30,000 raw questions, when the reader made the pools: build
    # 8.4 -> 7.9 s in one process, 6.0 -> 5.5 s with 2 workers, side by side)
    gc.freeze()
    try:
        with handoff_folder(workers, out) as folder:
            # the workers are forked here, before the writer's and the progress bar's threads start
            parts = ordered_map(_build_chunk, chunks, state=(corpus, cfg, folder), workers=workers)
            bar = StepProgress("traces", len(corpus.units), unit="questions", quiet=not progress)
            with closing(parts), TraceWriter(out, cfg.outputs) as writer, bar:
                for (start, stop), (part, part_tally) in zip(chunks, parts):
                    writer.write_encoded(part.load() if isinstance(part, Handed) else part)
                    tally.merge(part_tally)
                    bar.update(stop)
    finally:
        gc.unfreeze()
        corpus.close()
    t_build = time.perf_counter() - t0 - t_load
    attempts, reflections = corpus.attempts, corpus.reflections
    del corpus  # the pools or columns and texts (~0.5 GB at the published scale) are done: free them

    summary = tally.as_dict()
    summary["attempts"] = dict(sorted(attempts.items()))
    summary["reflections"] = dict(sorted(reflections.items()))
    if cfg.tokenizer:
        summary["token_lengths"] = token_lengths(trace_batches(out), cfg.tokenizer)  # the JSONL, else the dataset
    else:
        summary["token_lengths"] = None
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    seconds = round(time.perf_counter() - t0, 3)
    write_manifest(out, STAGE, config=cfg, inputs=inputs, counts={"traces": summary["traces"]}, seed=cfg.seed,
                   extra={"input_fingerprints": fingerprints, "seconds": seconds, "workers": workers,
                          "seconds_load": round(t_load, 3), "seconds_build": round(t_build, 3)})
    if progress:
        from rich.console import Console

        q = summary["questions"]
        Console(stderr=True).print(
            f"traces: {summary['traces']} traces from {q['with_traces']}/{q['total']} questions "
            f"({', '.join(f'{k} {v}' for k, v in summary['per_format'].items()) or 'none'}) in {seconds:.1f}s -> {out}",
            highlight=False, soft_wrap=True)
    return summary


#: Chunks (of about ENCODE_EVERY traces each) below which the traces are built in this process.
MIN_CHUNKS_FOR_WORKERS = 10


def _chunks(n_units: int, cfg: TraceConfig) -> list[tuple[int, int]]:
    """Ranges of units of about :data:`ENCODE_EVERY` traces each (the unit of work and of encoding)."""
    if isinstance(cfg.formats, list):
        per_unit = cfg.repeats * sum(cfg.max_responses if f in FULL_FORMATS else 1 for f in cfg.formats)
    else:
        per_unit = cfg.repeats
    size = max(1, ENCODE_EVERY // per_unit)
    return [(a, min(a + size, n_units)) for a in range(0, n_units, size)]


def _build_chunk(corpus: Corpus, cfg: TraceConfig, folder: str | None,
                 span: tuple[int, int]) -> tuple[Encoded | Handed, Tally]:
    """The traces of units ``span``, encoded, and their tally; in a worker process (``folder`` given) the
    encoded part is handed over in a file of ``folder``."""
    tally, traces = Tally(), []
    rng = random.Random(0)  # re-seeded for each trace: one for all (making one costs a seeding, ~3% of a build)
    # a chunk makes ~10^5 short-lived objects (pools, texts, trace rows) and no cycles: the collector would run
    # every 700 of them for nothing (2% of a chunk's time, measured side by side)
    collect = gc.isenabled()
    gc.disable()
    try:
        for unit in corpus.units[span[0]:span[1]]:
            tally.start_question()
            traces += traces_for_unit(unit, cfg, corpus, tally, rng)
            tally.end_question()
        part = encode(traces, cfg.outputs)
    finally:
        if collect:
            gc.enable()
    return (part.to_file(folder) if folder else part), tally


def formats_for(cfg: TraceConfig, question_id: str, repeat: int) -> list[str]:
    """The formats built for one question and repeat: all listed, or one drawn by weight."""
    if isinstance(cfg.formats, list):
        return cfg.formats
    rng = random.Random(f"{cfg.seed}/{question_id}/mix/{repeat}")
    names = list(cfg.formats)
    return rng.choices(names, weights=[cfg.formats[n] for n in names])


def traces_for_unit(unit: Unit, cfg: TraceConfig, corpus: Corpus, tally: Tally,
                    rng: random.Random | None = None) -> Iterator[Any]:
    """Every trace of one question (a :data:`~skillfactory.traces.outputs.TraceRow`), in a fixed order (repeat,
    format, n); skips are counted in ``tally``. ``rng`` is re-seeded for each trace (its state before does not
    matter): pass one to reuse it across questions."""
    qid, pool = unit.question_id, unit.pool
    rng = rng or random.Random(0)  # re-seeded per trace: the state of a new Random(seed), without making one
    # a question's traces reuse its attempts (15 blocks in the 5 *C_full traces): decode and strip each text once
    sample_text, reflection_text = _memo(corpus.sample_text), _memo(corpus.reflection_text)
    for r in range(cfg.repeats):
        for fmt in formats_for(cfg, qid, r):
            full = fmt in FULL_FORMATS
            seed_fmt = "*C_full" if fmt == "no_reflection" else fmt
            for n in range(1, cfg.max_responses + 1) if full else [None]:
                rng.seed(f"{cfg.seed}/{qid}/{seed_fmt}/{r}/{n or ''}")
                blocks = n if n is not None else choose_n(fmt, pool, rng, cfg.max_responses, cfg.distinct_variants)
                sel = select(fmt, pool, rng, blocks, cfg.distinct_variants)
                if isinstance(sel, str):
                    tally.skip(fmt, sel)
                    continue
                done = render(sel, rng, sample_text, reflection_text,
                              with_reflection=fmt != "no_reflection", pool_size=cfg.glue_pool_size)
                if fmt in CORRECT_FORMATS and unit.check is not None and not unit.check(done.final):
                    tally.skip(fmt, "final_answer_fails_check")
                    continue
                tally.made(fmt, len(sel.attempts), done.final_correct)
                yield TraceRow(  # Trace's fields, in its order
                    SCHEMA_VERSION,
                    f"{qid}|{fmt}|r{r}|n{n}" if full else f"{qid}|{fmt}|r{r}",  # id
                    qid,
                    fmt,
                    [{"role": "user", "content": unit.prompt}, {"role": "assistant", "content": done.assistant}],
                    len(sel.attempts),  # n_attempts
                    done.sample_ids,
                    done.reflection_ids,
                    done.final_correct,
                )


def _memo(text: Callable[[int], str]) -> Callable[[int], str]:
    """``text``, stripped, remembering what it gave (for one question's traces; render strips the texts, and a
    stripped text's strip is itself, not a copy)."""
    seen: dict[int, str] = {}

    def get(ref: int) -> str:
        value = seen.get(ref)
        if value is None:
            value = seen[ref] = text(ref).strip()
        return value

    return get


# ---- resume ------------------------------------------------------------------------------------------------------
def _inputs(cfg: TraceConfig) -> dict[str, str]:
    if cfg.raw:
        return {"raw": str(Path(cfg.raw).resolve())}
    return {"samples": str(Path(cfg.samples).resolve()), "reflections": str(Path(cfg.reflections).resolve())}


def _fingerprint(path: Path) -> str:
    """Size and modification time: cheap, and changes whenever an upstream stage rewrites its file."""
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def _finished(out: Path, cfg: TraceConfig, inputs: dict[str, str], fps: dict[str, str]) -> dict[str, Any] | None:
    """The saved summary when ``out`` holds a finished build of this very config and these input files."""
    manifest = read_manifest(out)
    summary = out / "summary.json"
    if manifest is None or not summary.exists() or not all((out / OUTPUTS[o]).exists() for o in cfg.outputs):
        return None
    key = cache_key({"stage": STAGE, "config": cfg.model_dump(mode="json"), "inputs": inputs})
    if manifest.get("cache_key") != key or manifest.get("input_fingerprints") != fps:
        return None
    return json.loads(summary.read_text())
