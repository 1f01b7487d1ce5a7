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
dataset is written in ``Dataset.save_to_disk``'s layout by hf_dataset.py. Its fingerprint is the sha256 of its
traces' JSONL lines' sha256 digests: derived from the content, so the same traces give the same dataset
files, and hashed line by line where the lines are made (in the workers), so a build that writes only the
dataset need not hand its JSONL over at all (a third of the bytes the workers pass on).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from skillfactory.records import Trace
from skillfactory.traces.hf_dataset import DatasetWriter, dataset_rows, record_batch

#: The outputs a build can write, by the name the config gives them, and where each goes in the output folder.
OUTPUTS: dict[str, str] = {"jsonl": "traces.jsonl", "dataset": "dataset", "llamafactory": "llamafactory"}
#: Name of the dataset entry written to ``llamafactory/dataset_info.json``.
LLAMAFACTORY_NAME = "skillfactory_traces"
LLAMAFACTORY_FILE = "traces.json"
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
        batch = record_batch(traces)
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


def trace_batches(path: str | Path, size: int = 512) -> Iterator[list[dict[str, Any]]]:
    """The traces of a traces.jsonl, a saved dataset folder or a traces stage folder (:func:`read_source`), as
    dicts, ``size`` at a time, in order. A JSONL line that is not a trace is an error naming file and line."""
    from skillfactory.traces.sources import TraceInputError

    path = read_source(path)
    if path.is_dir() and (path / "state.json").exists():
        yield from dataset_rows(path, size)
        return
    if path.is_dir() or not path.exists():
        where = path / OUTPUTS["jsonl"] if path.is_dir() else path
        raise TraceInputError(f"{where}: file not found (expected traces.jsonl from `skillfactory traces build`)")
    batch: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                trace = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(trace, dict) or "messages" not in trace:
                raise TraceInputError(f"{path}:{lineno}: field 'messages' missing (expected a trace record)")
            batch.append(trace)
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


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
