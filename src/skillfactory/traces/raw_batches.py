"""Reading a raw-layout file (``raw.py``) in batches: Arrow columns from parquet, msgspec-decoded JSONL lines,
and taking them ahead in threads (:class:`Prefetched` decodes, :func:`ahead` screens) while the caller works.

Why apart: this is the file-format and threading side (a batch of columns, or the rows as dicts for the row
reader, built only when asked); ``raw.py`` keeps the screening and the ordered pass that turn batches into pools.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from skillfactory.traces.parallel import available_cpus
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


_END = object()


class Prefetched:
    """``items``, taken ``depth`` ahead in a thread of their own, started at once: pyarrow decodes the next parquet
    batches (without the GIL) while the caller assembles the last one (or, for the first, makes its reader and
    imports what it needs), instead of waiting for each. An error taking an item is raised by ``next``, after the
    items before it; :meth:`close` stops the thread."""

    def __init__(self, items: Iterator[Any], depth: int = 2):
        import queue
        import threading

        self._items, self._q = items, queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._produce, name="raw-prefetch", daemon=True)
        self._thread.start()

    def _offer(self, entry: tuple[bool, Any]) -> bool:
        import queue

        while not self._stop.is_set():  # (the consumer may have stopped taking)
            try:
                self._q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._offer((True, item)):
                    return
            self._offer((True, _END))
        except BaseException as e:  # handed to the consumer, raised there
            self._offer((False, e))
        finally:
            close = getattr(self._items, "close", None)  # a generator's files are closed by the thread reading it
            if close is not None:
                close()

    def __iter__(self) -> Prefetched:
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        ok, item = self._q.get()
        if ok and item is not _END:
            return item
        self.close()
        if not ok:
            raise item
        raise StopIteration

    def close(self) -> None:
        self._done = True
        self._stop.set()
        self._thread.join()


def ahead(items: Iterator[Any], f: Callable[[Any], Any]) -> Iterator[tuple[Any, Any]]:
    """``(item, f(item))`` in order, ``f`` run on the next items in threads while the caller works on this one.

    The items are taken in the caller's thread (a parquet source is a :class:`Prefetched`, decoding in its own;
    JSONL decoding needs the GIL anyway); an error taking one is raised once the items before it are through,
    as when reading one at a time.
    """
    threads = max(1, min(4, available_cpus()))
    queued: deque = deque()
    with ThreadPoolExecutor(threads) as pool:
        while True:
            try:
                item = next(items, _END)
            except Exception:
                while queued:
                    item, done = queued.popleft()
                    yield item, done.result()
                raise
            if item is _END:
                break
            queued.append((item, pool.submit(f, item)))
            if len(queued) > threads:
                item, done = queued.popleft()
                yield item, done.result()
        while queued:
            item, done = queued.popleft()
            yield item, done.result()
