"""What the raw reader (``raw.py``) keeps of a file for the build: the texts in one buffer, the usable attempts
as columns, and each question's :class:`Pool` made from them when its traces are built.

Why apart: ``raw.py`` reads and screens; this is the store it fills, read by the trace builder (in worker
processes, which share it with the reader by fork).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skillfactory.traces.formats import Attempt, Pool
from skillfactory.traces.sources import Unit


class AttemptColumns:
    """The usable attempts as columns, in file order; a question's :class:`Pool` is made when a trace asks.

    Why not Attempt objects here: 470k of them (with their tuples and pools, ~10^6 objects at the published
    scale) were a third of the reading time in this one process; made from these columns, each worker makes
    the pools of its own questions, side by side, and the reading process holds a few numpy arrays.
    """

    def __init__(self) -> None:
        self._parts: list[tuple[Any, ...]] = []
        self._answers: list[str | None] = []
        self._ks: list[int] = []

    def add(self, q: Any, v: Any, index: Any, correct: list[bool], answers: list[str | None], refs: int,
            refl0: int, n_refl: list[int], refl_index: list[int]) -> None:
        """One batch's usable attempts: question and variant numbers, per-variant index, truth, answer; their
        texts are refs ``refs, refs+1, ...``, their kept reflections' texts ``refl0, ...`` in the same order,
        ``n_refl`` each, with those reflections' indexes in their rows flat in ``refl_index``."""
        import numpy as np

        n = np.asarray(n_refl, dtype=np.int64)
        self._parts.append((q, v, index, np.asarray(correct, dtype=bool), refs + np.arange(len(q), dtype=np.int64),
                            refl0 + np.cumsum(n) - n, n))
        self._answers += answers
        self._ks += refl_index

    def done(self, qids: list[str], variants: list[str]) -> AttemptTable:
        """The table, its rows sorted by question, then as a :class:`Pool` sorts them (variant name, index), so
        a pool is a slice in its order."""
        import numpy as np

        empty = np.zeros(0, dtype=np.int64)
        cols = [np.concatenate(c) for c in zip(*self._parts)] if self._parts else [empty] * 7
        q, v, index, correct, text_ref, refl_ref, n_refl = cols
        rank = {name: r for r, name in enumerate(sorted(variants))}
        by_name = np.array([rank[name] for name in variants] or [0], dtype=np.int64)
        order = np.lexsort((index, by_name[v], q))
        count = np.bincount(q, minlength=len(qids))
        k_start = np.cumsum(n_refl) - n_refl  # where each attempt's reflection indexes start in ks
        answers = [self._answers[i] for i in order.tolist()]
        table = AttemptTable(qids, variants, np.cumsum(count) - count, count, *(a[order] for a in (
            v, index, correct, text_ref, refl_ref, n_refl, k_start)), answers, tuple(self._ks))
        self._parts, self._answers, self._ks = [], [], []
        return table


_new = tuple.__new__  # makes an Attempt from its fields without the NamedTuple's Python __new__


@dataclass
class AttemptTable:
    """Usable attempts, rows sorted by question, then variant name and index (a :class:`Pool`'s order); question
    number ``q`` has rows ``first[q]`` on, ``count[q]``."""

    qids: list[str]
    variants: list[str]
    first: Any
    count: Any
    variant: Any  # numpy columns, one row per attempt
    index: Any
    correct: Any
    text_ref: Any
    refl_ref: Any  # ref of the attempt's first kept reflection text (the others follow)
    n_refl: Any
    k_start: Any  # where its reflections' indexes start in ks
    answers: list[str | None]
    ks: tuple[int, ...]  # every attempt's reflection indexes, flat, in file order (a slice of it is an Attempt's)

    def pool(self, q: int) -> Pool:
        """The pool of question number ``q``: the Attempts the reader used to make, made now."""
        a = int(self.first[q])
        b = a + int(self.count[q])
        qid, names, ks = self.qids[q], self.variants, self.ks
        # tuple.__new__, not Attempt(...): the NamedTuple's own __new__ is a Python frame per attempt; the texts'
        # refs are consecutive, so a range (indexed like the tuple, made 3x faster) - together a quarter of this
        attempts = [_new(Attempt, (qid, names[v], i, c, ans, t, ks[k:k + n], range(f, f + n)))
                    for v, i, c, ans, t, f, n, k in zip(
                        self.variant[a:b].tolist(), self.index[a:b].tolist(), self.correct[a:b].tolist(),
                        self.answers[a:b], self.text_ref[a:b].tolist(), self.refl_ref[a:b].tolist(),
                        self.n_refl[a:b].tolist(), self.k_start[a:b].tolist())]
        return Pool(qid, attempts, ordered=True)


class RawUnit(Unit):
    """A :class:`Unit` whose pool is made each time it is asked for (once per question in a build)."""

    def __init__(self, question_id: str, prompt: str, table: AttemptTable, number: int):
        self.question_id, self.prompt, self.check = question_id, prompt, None
        self._table, self._number = table, number

    @property  # type: ignore[override]
    def pool(self) -> Pool:
        return self._table.pool(self._number)


#: Size of the first text region and of the largest (each new one twice the last): anonymous memory, whose pages
#: cost only once written, so a small file reserves little.
FIRST_REGION_BYTES = 1 << 24
REGION_BYTES = 1 << 28
#: A text's place is ``region << PLACE_BITS | offset`` (regions are at most 2**PLACE_BITS bytes).
PLACE_BITS = 40


class Texts:
    """The texts a trace can use, UTF-8 in a few large regions of anonymous memory, each decoded when a trace
    uses it (a str each would cost ~50 bytes more and fragment the heap: ~0.3 GB more at the published scale).

    Why copied in by :meth:`put`, in the reading threads: a batch's texts are copied in numpy, which releases
    the GIL, so the copy and the first touch of each new page (0.45 GB at the published scale, most of the
    reading thread's time when it appended them to one buffer) run beside the ordered pass instead of in it.
    Where a batch lands depends on which thread is first; only :meth:`add`, in file order, numbers the texts,
    so the references (and the traces) do not.
    """

    def __init__(self) -> None:
        import threading
        from array import array

        self._regions: list[Any] = []
        self._used = 0  # bytes taken in the last region
        self._lock = threading.Lock()
        self._starts, self._ends = array("q"), array("q")

    def put(self, texts: Any) -> Any:
        """Copy an Arrow string array's texts in (from any thread); returns their places, for :meth:`add`."""
        import numpy as np
        import pyarrow as pa

        n = len(texts)
        if n == 0:
            return np.zeros(1, dtype=np.int64)
        width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
        offsets = np.frombuffer(texts.buffers()[1], dtype=width, count=n + 1, offset=texts.offset * width().itemsize)
        offsets = offsets.astype(np.int64)
        lo, size = int(offsets[0]), int(offsets[-1] - offsets[0])
        with self._lock:
            if not self._regions or self._used + size > len(self._regions[-1]):
                grown = min(REGION_BYTES, FIRST_REGION_BYTES << len(self._regions))
                self._regions.append(_anonymous(max(grown, size)))
                self._used = 0
            r, at = len(self._regions) - 1, self._used
            self._used += size
            region = self._regions[r]
        if size:
            np.frombuffer(region, np.uint8, size, at)[:] = np.frombuffer(texts.buffers()[2], np.uint8, size, lo)
        return offsets + ((r << PLACE_BITS) + at - lo)

    def add(self, places: Any) -> int:
        """Number the texts placed by :meth:`put` (in file order); returns the reference of the first."""
        first = len(self._ends)
        self._starts.frombytes(places[:-1].tobytes())
        self._ends.frombytes(places[1:].tobytes())
        return first

    def done(self) -> tuple[Callable[[int], str], Callable[[], None]]:
        """The reader of a text by reference (no more texts can be added), and what frees the regions."""
        regions, starts, ends = self._regions, self._starts, self._ends
        views = [memoryview(m) for m in regions]
        mask = (1 << PLACE_BITS) - 1

        def text(ref: int) -> str:
            a = starts[ref]
            view = views[a >> PLACE_BITS]
            return str(view[a & mask:(ends[ref] & mask)], "utf-8")

        def close() -> None:
            for v in views:
                v.release()
            for m in regions:
                try:
                    m.close()
                except BufferError:  # a view still held (a traceback's frame): unmapped when it goes
                    pass

        return text, close


def _anonymous(size: int) -> Any:
    """``size`` bytes of private anonymous memory (a forked worker shares its pages with the reader)."""
    import mmap

    if hasattr(mmap, "MAP_PRIVATE"):
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)
    return mmap.mmap(-1, size)
