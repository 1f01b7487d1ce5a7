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
        attempts = [Attempt(qid, names[v], i, c, ans, t, ks[k:k + n], tuple(range(f, f + n)))
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


class Texts:
    """The texts a trace can use, UTF-8 in one buffer, each decoded when a trace uses it: a str each would
    cost ~50 bytes more and fragment the heap (~0.3 GB more at the published scale)."""

    def __init__(self) -> None:
        from array import array

        self._data = bytearray()
        self._ends = array("q")

    def add(self, texts: Any) -> int:
        """Append an Arrow string array; returns the reference of its first text (the others follow)."""
        import numpy as np
        import pyarrow as pa

        first = len(self._ends)
        if len(texts) == 0:
            return first
        width = np.int64 if pa.types.is_large_string(texts.type) else np.int32
        offsets = np.frombuffer(texts.buffers()[1], dtype=width)[texts.offset:texts.offset + len(texts) + 1]
        base = len(self._data)
        if offsets[-1] > offsets[0]:
            self._data += memoryview(texts.buffers()[2])[offsets[0]:offsets[-1]]
        self._ends.frombytes((offsets[1:].astype(np.int64) - offsets[0] + base).tobytes())
        return first

    def done(self) -> Callable[[int], str]:
        """The reader of a text by reference (no more texts can be added)."""
        data, ends = memoryview(self._data), self._ends

        def text(ref: int) -> str:
            return str(data[ends[ref - 1] if ref else 0:ends[ref]], "utf-8")

        return text
