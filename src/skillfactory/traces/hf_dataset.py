"""The Hugging Face dataset output of the trace builder: ``OUT/dataset/`` in the ``Dataset.save_to_disk`` layout.

Why apart from the other outputs (outputs.py): this one reproduces another library's file layout (its shards,
record batches, metadata and bytes: the tests compare them with ``datasets``' own ``save_to_disk``, and
``datasets.load_from_disk`` reads it), written by pyarrow itself so a build pays neither the second of importing
``datasets`` nor reading the JSONL back. The JSONL and sharegpt writers have nothing of this.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from skillfactory.traces.arrow_arrays import bools, ints, offsets, strings

#: ``save_to_disk`` defaults (datasets/config.py: MAX_SHARD_SIZE, MAX_ROW_GROUP_SIZE, DEFAULT_MAX_BATCH_SIZE).
MAX_SHARD_BYTES = 500 * 10**6
MAX_BATCH_BYTES = 100 * 10**6
BATCH_ROWS = 1000
#: Block size of pyarrow's JSON reader as the old route used it (at least twice the longest line).
JSON_BLOCK = 1 << 22


def _schema() -> Any:
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema([
        ("schema_version", pa.int64()), ("id", pa.string()), ("question_id", pa.string()), ("format", pa.string()),
        ("messages", pa.list_(message)), ("n_attempts", pa.int64()), ("sample_ids", pa.list_(pa.string())),
        ("reflection_ids", pa.list_(pa.string())), ("final_correct", pa.bool_()),
    ])


def _features(t: Any) -> Any:
    """An Arrow type as ``datasets`` serialises its feature (``Value``, ``List``, a dict for a struct)."""
    import pyarrow as pa

    if pa.types.is_struct(t):
        return {f.name: _features(f.type) for f in t}
    if pa.types.is_list(t):
        return {"feature": _features(t.value_type), "_type": "List"}
    return {"dtype": str(t), "_type": "Value"}


@functools.lru_cache(maxsize=1)
def _dataset_schema() -> Any:
    """The schema ``save_to_disk`` writes: ours, with the features in its ``huggingface`` metadata."""
    schema = _schema()
    features = {f.name: _features(f.type) for f in schema}
    return schema.with_metadata({"huggingface": json.dumps({"info": {"features": features}})})


def record_batch(traces: Sequence[Any]) -> Any:
    """The dataset rows of traces given as :data:`~skillfactory.traces.outputs.TraceRow`, as one record batch."""
    import pyarrow as pa

    schema = _dataset_schema()
    message = schema.field("messages").type

    messages = pa.StructArray.from_arrays([strings([m["role"] for t in traces for m in t.messages]),
                                           strings([m["content"] for t in traces for m in t.messages])],
                                          fields=list(message.value_type))
    arrays = [
        ints([t.schema_version for t in traces]), strings([t.id for t in traces]),
        strings([t.question_id for t in traces]), strings([t.format for t in traces]),
        pa.ListArray.from_arrays(offsets([len(t.messages) for t in traces]), messages, type=message),
        ints([t.n_attempts for t in traces]),
        pa.ListArray.from_arrays(offsets([len(t.sample_ids) for t in traces]),
                                 strings([x for t in traces for x in t.sample_ids])),
        pa.ListArray.from_arrays(offsets([len(t.reflection_ids) for t in traces]),
                                 strings([x for t in traces for x in t.reflection_ids])),
        bools([t.final_correct for t in traces]),
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class DatasetWriter:
    """Streams record batches into ``out_dir`` in the ``Dataset.save_to_disk`` layout.

    The bytes are those of the old route (pyarrow's JSON reader on ``traces.jsonl``, then ``save_to_disk``):
    IPC pads a sliced buffer to 64 bytes with whatever follows it, so the rows are regrouped into the chunks
    that reader makes (its 4 MiB blocks, found from the line lengths) and cut into batches the way
    ``save_to_disk`` cuts them. Only when that guess of the layout fails (more than 500 MB: several shards;
    rows of over 100 kB: smaller batches; a line of over 2 MiB: larger blocks) are the rows read back from the
    stream written here and cut again, knowing them all (no JSONL is needed, so none need be written).
    """

    def __init__(self, out_dir: Path):
        import pyarrow as pa

        self.out_dir, self.tmp = out_dir, out_dir.with_name(f".{out_dir.name}.tmp")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.schema = _dataset_schema()
        self._stream = self.tmp / "stream.arrow"
        self._writer = pa.ipc.new_stream(str(self._stream), self.schema)
        self._batches = _SaveBatches(self._writer, BATCH_ROWS)
        self._pieces: list[Any] = []  # slices of record batches making the reader's current chunk
        self._lengths = array("q")  # every row's JSONL line length, for a layout cut again at the end
        self.rows = self.nbytes = self.max_line = 0
        self._end, self._block = 0, 0  # JSONL bytes so far; the reader's block of the last line

    def add(self, batch: Any, line_lengths: list[int]) -> None:
        """Add rows whose JSONL lines (newline included) have these lengths."""
        import numpy as np

        if not line_lengths:
            return
        self._lengths.extend(line_lengths)
        # the reader's chunks: a line ending in block k (its end in (k*B, (k+1)*B]) is in the chunk of block k
        blocks = (self._end + np.cumsum(line_lengths, dtype=np.int64) - 1) // JSON_BLOCK
        starts = np.flatnonzero(np.diff(blocks, prepend=self._block)).tolist()
        self._end += sum(line_lengths)
        self._block = int(blocks[-1])
        self.max_line = max(self.max_line, max(line_lengths))
        for a, b in zip([0, *starts], [*starts, len(line_lengths)]):
            if a == b:  # the first line starts a new chunk
                continue
            if a in starts:
                self._finish_chunk()
            self._pieces.append(batch.slice(a, b - a))

    def _finish_chunk(self) -> None:
        if not self._pieces:
            return
        chunk = _combined(self._pieces)
        self.rows += chunk.num_rows
        self.nbytes += chunk.nbytes
        self._batches.feed(chunk)
        self._pieces = []

    def finish(self, fingerprint: str) -> None:
        """Write the files (``fingerprint``: the dataset's ``_fingerprint``); :meth:`commit` puts them in place."""
        self._finish_chunk()
        self._batches.close()
        self._writer.close()
        # as save_to_disk: shards of at most 500 MB (never more than rows), batches of at most 100 MB
        shards = min(self.rows, int(self.nbytes / MAX_SHARD_BYTES) + 1)
        batch = min(BATCH_ROWS, max(1, self.rows * MAX_BATCH_BYTES // self.nbytes)) if self.nbytes else BATCH_ROWS
        names = [f"data-{i:05d}-of-{shards:05d}.arrow" for i in range(shards)]
        if shards == 1 and batch == BATCH_ROWS and 2 * self.max_line <= JSON_BLOCK:
            os.replace(self._stream, self.tmp / names[0])
        else:
            if shards:
                self._cut_again(names, batch)
            self._stream.unlink()
        state = {"_data_files": [{"filename": n} for n in names], "_fingerprint": fingerprint,
                 "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
                 "_output_all_columns": False, "_split": None}
        (self.tmp / "state.json").write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        features = {f.name: _features(f.type) for f in self.schema}
        info = {"citation": "", "description": "", "features": features, "homepage": "", "license": ""}
        (self.tmp / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")

    def commit(self) -> None:
        shutil.rmtree(self.out_dir, ignore_errors=True)
        os.replace(self.tmp, self.out_dir)

    def _reader_chunks(self) -> Iterator[Any]:
        """The rows written, streamed back from the stream file, in the chunks pyarrow's JSON reader makes of
        their JSONL with the block size it needs (at least twice the longest line)."""
        import numpy as np
        import pyarrow as pa

        block = max(JSON_BLOCK, 2 * self.max_line)
        ends = np.cumsum(np.frombuffer(self._lengths, dtype=np.int64)) - 1
        sizes = np.bincount((ends // block) - ends[0] // block).tolist() if len(ends) else []
        with pa.memory_map(str(self._stream)) as source:
            batches = iter(pa.ipc.open_stream(source))
            piece, at = None, 0  # the batch being cut; its rows already in a chunk
            for size in sizes:
                pieces = []
                while size:
                    if piece is None or at == piece.num_rows:
                        piece, at = next(batches), 0
                    take = piece.slice(at, size)
                    pieces.append(take)
                    at, size = at + take.num_rows, size - take.num_rows
                if pieces:
                    yield _combined(pieces)

    def _cut_again(self, names: list[str], batch: int) -> None:
        """The rows in the reader's chunks, cut into contiguous shards (``Dataset.shard(contiguous=True)``) of
        ``batch``-row batches."""
        import pyarrow as pa

        div, mod = divmod(self.rows, len(names))
        chunks = self._reader_chunks()
        chunk, at = next(chunks), 0  # the current chunk; rows of it already in a shard
        for i, name in enumerate(names):
            with pa.ipc.new_stream(str(self.tmp / name), self.schema) as out:
                batches, left = _SaveBatches(out, batch), div + (i < mod)
                while left:
                    if at == chunk.num_rows:
                        chunk, at = next(chunks), 0
                    piece = chunk.slice(at, left)
                    batches.feed(piece)
                    at, left = at + piece.num_rows, left - piece.num_rows
                batches.close()

    def abort(self) -> None:
        self._writer.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _combined(pieces: list[Any]) -> Any:
    """Record batch slices as one batch in buffers of its own, as the JSON reader makes a chunk (an empty piece
    makes even a single slice be copied)."""
    import pyarrow as pa

    return pa.Table.from_batches([*pieces, pieces[0].slice(0, 0)]).combine_chunks().to_batches()[0]


class _SaveBatches:
    """The record batches ``save_to_disk`` writes from a table's chunks: ``datasets.table.table_iter`` (each chunk
    split every ``size`` rows, pieces gathered into ``size``-row tables) then ``combine_chunks``: a batch of one
    piece stays a slice of its chunk, one of several pieces is copied. Fed one chunk at a time."""

    def __init__(self, writer: Any, size: int):
        self.writer, self.size = writer, size
        self._pieces: list[Any] = []
        self._rows = 0

    def feed(self, chunk: Any) -> None:
        for start in range(0, chunk.num_rows, self.size):
            piece = chunk.slice(start, self.size)
            n = piece.num_rows
            if self._rows + n < self.size:
                self._pieces.append(piece)
                self._rows += n
                continue
            cut = self.size - self._rows
            self._pieces.append(piece.slice(0, cut))
            self._write()
            if n > cut:
                self._pieces, self._rows = [piece.slice(cut, n - cut)], n - cut

    def close(self) -> None:
        if self._pieces:
            self._write()

    def _write(self) -> None:
        import pyarrow as pa

        self.writer.write_table(pa.Table.from_batches(self._pieces).combine_chunks())
        self._pieces, self._rows = [], 0


def dataset_rows(folder: str | Path, size: int = 512) -> Iterator[list[dict[str, Any]]]:
    """The rows of a dataset folder written here (or by ``save_to_disk``), as dicts, ``size`` at a time, read
    with pyarrow (no ``datasets`` import)."""
    import pyarrow as pa

    folder = Path(folder)
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    for entry in state["_data_files"]:
        with pa.memory_map(str(folder / entry["filename"])) as source:
            for batch in pa.ipc.open_stream(source):
                for start in range(0, batch.num_rows, size):
                    yield batch.slice(start, size).to_pylist()
