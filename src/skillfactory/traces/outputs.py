"""Writers of the trace builder's outputs: chat JSONL, LLaMA-Factory sharegpt export, Hugging Face dataset.

Traces are streamed to temporary files and renamed into place at the end (atomic: a reader sees the old
file or the new one, never half of one), so memory does not grow with the number of traces. The HF dataset
is built afterwards from the finished JSONL with pyarrow's JSON reader (fast, no Python row objects), with a
fingerprint derived from the file's content so that the same traces give the same dataset files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from skillfactory.records import Trace

#: Name of the dataset entry written to ``llamafactory/dataset_info.json``.
LLAMAFACTORY_NAME = "skillfactory_traces"
LLAMAFACTORY_FILE = "traces.json"


class _AtomicFile:
    """A text file written under a temporary name and renamed into place on ``commit``."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.f: IO[str] = os.fdopen(fd, "w", encoding="utf-8")

    def commit(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if not self.f.closed:
            self.f.close()
        Path(self.tmp).unlink(missing_ok=True)


class TraceWriter:
    """Streams traces to ``OUT/traces.jsonl`` and ``OUT/llamafactory/traces.json`` (a sharegpt JSON array).

        with TraceWriter(out) as w:
            w.write(trace)
    """

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.n = 0
        self.sha = hashlib.sha256()
        self.max_line = 0

    def __enter__(self) -> TraceWriter:
        self._jsonl = _AtomicFile(self.out / "traces.jsonl")
        self._lf = _AtomicFile(self.out / "llamafactory" / LLAMAFACTORY_FILE)
        self._lf.f.write("[")
        return self

    def write(self, trace: Trace) -> None:
        line = trace.model_dump_json() + "\n"
        self._jsonl.f.write(line)
        self.sha.update(line.encode())
        self.max_line = max(self.max_line, len(line.encode()))
        self._lf.f.write(("\n" if self.n == 0 else ",\n") + json.dumps(sharegpt(trace), ensure_ascii=False))
        self.n += 1

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self._jsonl.abort()
            self._lf.abort()
            return
        self._lf.f.write("\n]\n")
        self._jsonl.commit()
        self._lf.commit()
        info = {LLAMAFACTORY_NAME: llamafactory_entry()}
        _atomic_text(self.out / "llamafactory" / "dataset_info.json", json.dumps(info, indent=2) + "\n")


def sharegpt(trace: Trace) -> dict[str, Any]:
    """One trace in LLaMA-Factory's sharegpt layout (``from``: human/gpt, ``value``), with its id and format."""
    roles = {"user": "human", "assistant": "gpt", "system": "system"}
    return {
        "id": trace.id,
        "format": trace.format,
        "conversations": [{"from": roles[m["role"]], "value": m["content"]} for m in trace.messages],
    }


def llamafactory_entry() -> dict[str, Any]:
    """The ``dataset_info.json`` entry that tells LLaMA-Factory how to read ``traces.json``."""
    return {
        "file_name": LLAMAFACTORY_FILE,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "system_tag": "system"},
    }


def _atomic_text(path: Path, text: str) -> None:
    f = _AtomicFile(path)
    try:
        f.f.write(text)
        f.commit()
    except BaseException:
        f.abort()
        raise


def _schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("schema_version", pa.int64()), ("id", pa.string()), ("question_id", pa.string()), ("format", pa.string()),
        ("messages", pa.list_(message)), ("n_attempts", pa.int64()), ("sample_ids", pa.list_(pa.string())),
        ("reflection_ids", pa.list_(pa.string())), ("final_correct", pa.bool_()),
    ])


def write_dataset(traces_jsonl: Path, out_dir: Path, fingerprint: str, max_line: int) -> None:
    """Save the traces as a Hugging Face dataset (``datasets.load_from_disk(out_dir)``), replacing any old one."""
    import pyarrow as pa
    import pyarrow.json as pj
    from datasets import Dataset
    from datasets.table import InMemoryTable
    from datasets.utils import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled

    schema = _schema()
    if traces_jsonl.stat().st_size == 0:
        table = schema.empty_table()
    else:
        read = pj.ReadOptions(block_size=max(1 << 22, 2 * max_line))
        parse = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        table = pj.read_json(traces_jsonl, read_options=read, parse_options=parse).select(schema.names)
    table = table.cast(pa.schema(schema))
    tmp = out_dir.with_name(f".{out_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    bars = is_progress_bar_enabled()
    disable_progress_bars()  # the builder shows its own progress; datasets' bar would print per save
    try:
        Dataset(InMemoryTable(table), fingerprint=fingerprint[:16]).save_to_disk(str(tmp))
    finally:
        if bars:
            enable_progress_bars()
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
