"""Reading a raw-layout file (``raw.py``) in batches: Arrow columns from parquet, msgspec-decoded JSONL lines.

Why apart: this is the file-format side (a batch of columns, or the rows as dicts for the row reader, built only
when asked); ``raw.py`` keeps the screening and the ordered pass that turn batches into pools.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from skillfactory.traces.sources import TraceInputError

if TYPE_CHECKING:
    from skillfactory.traces.raw import RawColumns


@dataclass
class Batch:
    """Rows of one batch: Arrow columns for the columnar path (None: not possible), and the rows as
    ``(where, row dict)`` pairs for the row reader, built only when asked."""

    columns: dict[str, Any] | None
    rows: Callable[[], list[tuple[str, dict[str, Any]]]]


def parquet_batches(path: Path, c: RawColumns, batch_rows: int) -> Iterator[Batch]:
    import pyarrow.parquet as pq

    names = c.names()
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a bad file
        raise TraceInputError(f"{path}: not a readable parquet file ({e})") from None
    present = set(pf.schema_arrow.names)
    missing = [n for n in names if n not in present]
    if missing:
        raise TraceInputError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(sorted(present))}); "
                              "set columns.<field> to the name your file uses")
    start = 0
    for batch in pf.iter_batches(batch_size=batch_rows, columns=names):
        cols = {n: batch.column(n) for n in names}
        yield Batch(cols, lambda b=batch, s=start: [(f"row {s + i}", r) for i, r in enumerate(b.to_pylist())])
        start += batch.num_rows


def jsonl_batches(path: Path, c: RawColumns, batch_rows: int) -> Iterator[Batch]:
    """Lines decoded by msgspec into the needed fields only, strictly typed; a line of another shape is read
    with ``json`` instead, and its batch goes to the row reader (which says what is wrong, if anything)."""
    names = c.names()
    strs = list[str | None] | str | None
    types = {c.question: str, c.prompt_variant: str, c.response: strs, c.correct: list[bool] | bool,
             c.extracted: strs, c.reflections: list[str | None] | None}
    fields = [(f"f{i}", types.get(n, Any)) for i, n in enumerate(names)]
    decode = msgspec.json.Decoder(msgspec.defstruct("RawRow", fields, rename=dict(zip(dict(fields), names)))).decode
    rows: list[Any] = []
    wheres: list[str] = []
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(decode(line))
            except msgspec.DecodeError:  # also ValidationError: a missing or differently typed field
                rows.append(_json_row(path, lineno, line, names))
            wheres.append(f"line {lineno}")
            if len(rows) == batch_rows:
                yield _jsonl_batch(rows, wheres, names, types)
                rows, wheres = [], []
    if rows:
        yield _jsonl_batch(rows, wheres, names, types)


def _json_row(path: Path, lineno: int, line: bytes, names: list[str]) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise TraceInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise TraceInputError(f"{path}:{lineno}: expected a JSON object per line")
    for n in names:
        if n not in row:
            raise TraceInputError(f"{path}:{lineno}: missing column {n!r} (keys: {', '.join(sorted(row))}); "
                                  "set columns.<field> to the name your file uses")
    return row


def _jsonl_batch(rows: list[Any], wheres: list[str], names: list[str], types: dict[str, Any]) -> Batch:
    import pyarrow as pa

    def as_dicts() -> list[tuple[str, dict[str, Any]]]:
        return [(w, r if isinstance(r, dict) else dict(zip(names, msgspec.structs.astuple(r))))
                for w, r in zip(wheres, rows)]

    if any(isinstance(r, dict) for r in rows):
        return Batch(None, as_dicts)
    cols: dict[str, Any] = {}
    for i, n in enumerate(names):
        values = [getattr(r, f"f{i}") for r in rows]
        if n not in types:  # answer, question id: hashed or str()-ed as decoded (Arrow would widen objects)
            cols[n] = values
            continue
        try:
            cols[n] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # lists in some rows, strings in others
            return Batch(None, as_dicts)
    return Batch(cols, as_dicts)


__all__ = ["Batch", "jsonl_batches", "parquet_batches"]
