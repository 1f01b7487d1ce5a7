"""Writers of the trace builder's outputs: chat JSONL, LLaMA-Factory sharegpt export, Hugging Face dataset.

Any of the three can be left out (:data:`OUTPUTS`, the traces stage's ``outputs``): a user who only pushes the
dataset to the Hub, as the published script does, need not write the other two-thirds of the bytes. The files
written are the same bytes whichever others are written with them.

Traces are streamed to temporary files and renamed into place at the end (atomic: a reader sees the old
file or the new one, never half of one), so memory does not grow with the number of traces.

Speed (10^5 traces, 1 GB of output at the published scale): traces are encoded a thousand at a time
(:func:`encode`, which a worker process can run too) with msgspec, which writes the bytes pydantic's
``model_dump_json`` and ``json.dumps`` wrote before (the tests compare them), and into an Arrow record batch;
writing, hashing and the Arrow stream run in a thread (all release the GIL) while traces are built. The HF
dataset is the layout ``Dataset.save_to_disk`` writes, with the same shards, batches, metadata and bytes as
``datasets`` gives (the tests check; ``datasets.load_from_disk`` reads it), written by pyarrow itself: neither
the second of importing ``datasets`` nor reading the JSONL back is paid. Its fingerprint is the sha256 of its
traces' JSONL lines' sha256 digests: derived from the content, so the same traces give the same dataset
files, and hashed line by line where the lines are made (in the workers), so a build that writes only the
dataset need not hand its JSONL over at all (a third of the bytes the workers pass on).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from array import array
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from skillfactory.records import Trace

#: The outputs a build can write, by the name the config gives them, and where each goes in the output folder.
OUTPUTS: dict[str, str] = {"jsonl": "traces.jsonl", "dataset": "dataset", "llamafactory": "llamafactory"}
#: Name of the dataset entry written to ``llamafactory/dataset_info.json``.
LLAMAFACTORY_NAME = "skillfactory_traces"
LLAMAFACTORY_FILE = "traces.json"
#: ``save_to_disk`` defaults (datasets/config.py: MAX_SHARD_SIZE, MAX_ROW_GROUP_SIZE, DEFAULT_MAX_BATCH_SIZE).
MAX_SHARD_BYTES = 500 * 10**6
MAX_BATCH_BYTES = 100 * 10**6
BATCH_ROWS = 1000
#: Block size of pyarrow's JSON reader as the old route used it (at least twice the longest line).
JSON_BLOCK = 1 << 22
#: Traces encoded together by :meth:`TraceWriter.write`.
ENCODE_EVERY = 1000
#: Bytes written to an output file between two background syncs (:class:`_AtomicFile`).
SYNC_EVERY = 64 << 20

_ENCODE = msgspec.json.Encoder().encode

#: A trace as the writers take it: :class:`~skillfactory.records.Trace`'s fields, in its order, unvalidated.
#: Why not the pydantic record: the builder makes 10^5 of them, and a Struct is made in 0.19 us where even
#: ``Trace.model_construct`` (no validation) takes 4.6 us; it encodes to the same JSON object (the tests compare it
#: with ``model_dump_json``).
TraceRow = msgspec.defstruct("TraceRow", [(name, Any) for name in Trace.model_fields], module=__name__)
_ROLES = {"user": "human", "assistant": "gpt", "system": "system"}
_ROLE_JSON = {role: _ENCODE(name) for role, name in _ROLES.items()}


@dataclass
class Encoded:
    """Traces encoded for the three outputs, in order."""

    n: int
    jsonl: bytes | memoryview  # their traces.jsonl lines (empty: not asked for)
    sharegpt: bytes | memoryview  # their sharegpt objects, joined by ",\n" (empty: not asked for)
    line_lengths: list[int]  # bytes of each JSONL line, newline included
    batch: Any  # Arrow record batch of their dataset rows (None: not asked for)
    digests: bytes = b""  # the sha256 of each JSONL line, for the dataset's fingerprint (empty: no dataset)

    def to_file(self, folder: str | Path) -> Handed:
        """Write this part to a new file in ``folder`` (a worker process's side of :class:`Handed`)."""
        import pyarrow as pa

        fd, path = tempfile.mkstemp(dir=folder, prefix="part-", suffix=".bin")
        with os.fdopen(fd, "wb") as f:
            f.write(self.jsonl)
            f.write(self.sharegpt)
            if self.batch is not None:
                with pa.ipc.new_stream(f, self.batch.schema) as stream:
                    stream.write_batch(self.batch)
        return Handed(path, self.n, len(self.jsonl), len(self.sharegpt), self.line_lengths, self.batch is not None,
                      self.digests)


@dataclass
class Handed:
    """An :class:`Encoded` part written to a file by a worker process; only this small record is pickled.

    Why not send the part itself: at the published scale a build's parts are 1 GB, and sent through
    multiprocessing's pipe they cost the parent more CPU (2.8 s at 30,000 questions) than building them.
    Here the parent maps the file (in ``/dev/shm`` where it has room; removed once mapped) and reads the bytes
    and the Arrow batch in place.
    """

    path: str
    n: int
    jsonl_bytes: int
    sharegpt_bytes: int
    line_lengths: list[int]
    has_batch: bool = True
    digests: bytes = b""

    def load(self) -> Encoded:
        """The part, its bytes views of the mapped file (removed now; the mapping lives while they do)."""
        import mmap

        import pyarrow as pa

        with open(self.path, "rb") as f:
            empty = os.fstat(f.fileno()).st_size == 0  # no traces, no batch: nothing to map
            mapped = b"" if empty else mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        os.unlink(self.path)
        view = memoryview(mapped)
        a, b = self.jsonl_bytes, self.jsonl_bytes + self.sharegpt_bytes
        batch = pa.ipc.open_stream(pa.py_buffer(view[b:])).read_next_batch() if self.has_batch else None
        return Encoded(self.n, view[:a], view[a:b], self.line_lengths, batch, self.digests)


def trace_row(trace: Trace) -> Any:
    """The :data:`TraceRow` of a validated trace (its ``__dict__`` is its fields in declaration order)."""
    return TraceRow(*trace.__dict__.values())


def encode(traces: Sequence[Any], outputs: Collection[str] = tuple(OUTPUTS)) -> Encoded:
    """Encode traces given as :data:`TraceRow` (or :class:`~skillfactory.records.Trace`, converted here) for
    ``outputs``. The JSONL lines are always made (the dataset's layout and fingerprint come from them), joined
    only for the JSONL output."""
    traces = [t if isinstance(t, TraceRow) else trace_row(t) for t in traces]
    lines = [_ENCODE(t) + b"\n" for t in traces]
    share = b",\n".join(map(sharegpt_json, traces)) if "llamafactory" in outputs else b""
    batch, digests = None, b""
    if "dataset" in outputs:
        batch = _record_batch(traces)
        sha = hashlib.sha256
        digests = b"".join([sha(line).digest() for line in lines])
    jsonl = b"".join(lines) if "jsonl" in outputs else b""
    return Encoded(len(traces), jsonl, share, list(map(len, lines)), batch, digests)


class _AtomicFile:
    """A file written under a temporary name and renamed into place on ``commit``, synced to disk first.

    Why sync as it grows (:meth:`write`): a build writes up to a gigabyte, which the kernel holds in memory
    until asked; one fsync at the end then waited for all of it (1.2-1.6 s of a 10 s build at 30,000 raw
    questions). Every :data:`SYNC_EVERY` bytes an fdatasync of what is written runs in a thread of its own, so
    the disk works while traces are built and the last sync waits only for the tail.
    """

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        self.f: BinaryIO = os.fdopen(fd, "wb")
        self._unsynced = 0
        self._syncing: Future | None = None
        self._syncer: ThreadPoolExecutor | None = None

    def write(self, data: bytes | memoryview) -> None:
        """Write ``data``; start a background sync of the file each :data:`SYNC_EVERY` bytes."""
        self.f.write(data)
        self._unsynced += len(data)
        if self._unsynced >= SYNC_EVERY and (self._syncing is None or self._syncing.done()):
            self.f.flush()  # to the kernel: what the sync writes
            self._syncer = self._syncer or ThreadPoolExecutor(1, thread_name_prefix="sync")
            self._syncing = self._syncer.submit(os.fdatasync, self.f.fileno())
            self._unsynced = 0

    def _stop_syncing(self) -> None:
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)  # a sync running on a closed descriptor could hit another file
            self._syncer = None
        if self._syncing is not None:
            syncing, self._syncing = self._syncing, None
            syncing.result()

    def sync(self) -> None:
        self.f.flush()
        self._stop_syncing()
        os.fsync(self.f.fileno())
        self.f.close()

    def commit(self) -> None:
        self.sync()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._stop_syncing()
        except OSError:
            pass  # the file is being thrown away
        if not self.f.closed:
            self.f.close()
        Path(self.tmp).unlink(missing_ok=True)


class _InOrder:
    """Runs calls one after the other in a thread, at most ``depth`` of them waiting (bounds memory)."""

    def __init__(self, depth: int = 16):
        self._pool = ThreadPoolExecutor(1)
        self._queued: deque[Future] = deque()
        self.depth = depth

    def __call__(self, fn: Callable[..., Any], *args: Any) -> None:
        self._queued.append(self._pool.submit(fn, *args))
        while len(self._queued) > self.depth:
            self._queued.popleft().result()

    def close(self, wait: bool = True) -> None:
        try:
            while wait and self._queued:
                self._queued.popleft().result()  # raises what a call raised
        finally:
            self._pool.shutdown(cancel_futures=True)


class TraceWriter:
    """Streams traces to ``OUT/traces.jsonl``, ``OUT/llamafactory/traces.json`` (a sharegpt JSON array) and
    ``OUT/dataset/`` (a Hugging Face dataset), those of ``outputs`` only, all put in place when the block ends
    without an error. An output left out is removed from ``OUT`` then, so the folder never holds files of two
    builds.

        with TraceWriter(out) as w:
            w.write(trace)           # or w.write_encoded(encode(traces))
    """

    def __init__(self, out: str | Path, outputs: Collection[str] = tuple(OUTPUTS)):
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ValueError(f"unknown output {unknown[0]!r} (outputs: {', '.join(OUTPUTS)})")
        self.out = Path(out)
        self.outputs = tuple(o for o in OUTPUTS if o in outputs)
        self.n = 0
        self.sha = hashlib.sha256()
        self._pending: list[Trace] = []

    def __enter__(self) -> TraceWriter:
        has = self.outputs
        self._jsonl = _AtomicFile(self.out / OUTPUTS["jsonl"]) if "jsonl" in has else None
        self._lf = _AtomicFile(self.out / "llamafactory" / LLAMAFACTORY_FILE) if "llamafactory" in has else None
        if self._lf is not None:
            self._lf.f.write(b"[")
        self._dataset = DatasetWriter(self.out / OUTPUTS["dataset"]) if "dataset" in has else None
        self._io = _InOrder()
        return self

    def write(self, trace: Trace) -> None:
        self._pending.append(trace)
        if len(self._pending) == ENCODE_EVERY:
            self._flush()

    def write_encoded(self, part: Encoded) -> None:
        """Write traces encoded by :func:`encode` (after any written one by one before)."""
        self._flush()
        if part.n == 0:
            return
        if self._jsonl is not None:
            self._io(self._jsonl.write, part.jsonl)
        if self._lf is not None:
            self._io(self._lf.write, b"\n" if self.n == 0 else b",\n")
            self._io(self._lf.write, part.sharegpt)
        if self._dataset is not None:
            self._io(self.sha.update, part.digests)  # the dataset's fingerprint
            self._io(self._dataset.add, part.batch, part.line_lengths)
        self.n += part.n

    def _flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, []
            self.write_encoded(encode(pending, self.outputs))

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self._abort()
            return
        try:
            self._flush()
            self._io.close()
            self._commit()
        except BaseException:
            self._abort()
            raise

    def _files(self) -> list[_AtomicFile]:
        return [f for f in (self._jsonl, self._lf) if f is not None]

    def _abort(self) -> None:
        self._io.close(wait=False)
        for f in self._files():
            f.abort()
        if self._dataset is not None:
            self._dataset.abort()

    def _commit(self) -> None:
        if self._lf is not None:
            self._lf.f.write(b"\n]\n")
        with ThreadPoolExecutor(2) as pool:  # both fsyncs at once, while the dataset is finished
            synced = [pool.submit(f.sync) for f in self._files()]
            if self._dataset is not None:
                self._dataset.finish(self.sha.hexdigest()[:16])
            for done in synced:
                done.result()
        for f in self._files():
            os.replace(f.tmp, f.path)
        if self._lf is not None:
            info = {LLAMAFACTORY_NAME: llamafactory_entry()}
            _atomic_text(self.out / "llamafactory" / "dataset_info.json", json.dumps(info, indent=2) + "\n")
        if self._dataset is not None:
            self._dataset.commit()
        for name, where in OUTPUTS.items():  # a former build's outputs that this one does not write
            if name not in self.outputs:
                path = self.out / where
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def read_source(path: str | Path) -> Path:
    """Where the traces of ``path`` are: a traces stage folder gives its traces.jsonl, or its dataset folder
    when the build wrote no JSONL; any other path is returned as it is."""
    path = Path(path)
    if path.is_dir():
        if (path / OUTPUTS["jsonl"]).exists():
            return path / OUTPUTS["jsonl"]
        if (path / OUTPUTS["dataset"] / "state.json").exists():
            return path / OUTPUTS["dataset"]
    return path


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


def sharegpt(trace: Trace) -> dict[str, Any]:
    """One trace in LLaMA-Factory's sharegpt layout (``from``: human/gpt, ``value``), with its id and format."""
    return {
        "id": trace.id,
        "format": trace.format,
        "conversations": [{"from": _ROLES[m["role"]], "value": m["content"]} for m in trace.messages],
    }


def sharegpt_json(trace: Any) -> bytes:
    """``json.dumps(sharegpt(trace), ensure_ascii=False)``, encoded, without building the dict (3x faster); a
    :data:`TraceRow` or a :class:`~skillfactory.records.Trace`."""
    parts = [b'{"id": ', _ENCODE(trace.id), b', "format": ', _ENCODE(trace.format), b', "conversations": [']
    for i, m in enumerate(trace.messages):
        parts += [b', {"from": ' if i else b'{"from": ', _ROLE_JSON[m["role"]], b', "value": ', _ENCODE(m["content"]),
                  b"}"]
    parts.append(b"]}")
    return b"".join(parts)


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
        f.f.write(text.encode())
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


def _record_batch(traces: Sequence[Any]) -> Any:
    import pyarrow as pa

    schema = _dataset_schema()
    message = schema.field("messages").type

    def offsets(lengths: list[int]) -> Any:
        return pa.array([0, *accumulate(lengths)], pa.int32())

    def strings(values: list[str]) -> Any:
        return pa.array(values, pa.string())

    messages = pa.StructArray.from_arrays([strings([m["role"] for t in traces for m in t.messages]),
                                           strings([m["content"] for t in traces for m in t.messages])],
                                          fields=list(message.value_type))
    arrays = [
        pa.array([t.schema_version for t in traces], pa.int64()), strings([t.id for t in traces]),
        strings([t.question_id for t in traces]), strings([t.format for t in traces]),
        pa.ListArray.from_arrays(offsets([len(t.messages) for t in traces]), messages, type=message),
        pa.array([t.n_attempts for t in traces], pa.int64()),
        pa.ListArray.from_arrays(offsets([len(t.sample_ids) for t in traces]),
                                 strings([x for t in traces for x in t.sample_ids])),
        pa.ListArray.from_arrays(offsets([len(t.reflection_ids) for t in traces]),
                                 strings([x for t in traces for x in t.reflection_ids])),
        pa.array([t.final_correct for t in traces], pa.bool_()),
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
