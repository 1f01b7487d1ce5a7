"""Resumable generation over many work units, shared by the sampling and reflection stages.

A *unit* is one request that wants ``params.n`` completions (a question in one prompt variant; a sample to
reflect on). Completion ``(unit.key, index)`` is the atom of resume: a stage records finished atoms in its
JSONL file, and on a re-run only the missing ones are written.

Why fixed chunks: the unit list is cut into chunks of a fixed number of units, decided from the *whole* list,
not from what is left. A chunk with any missing atom is generated again as a whole, so the backend sees
exactly the same batch as in an uninterrupted run, and even float-level effects of batch shape cannot make a
resumed run differ from an uninterrupted one. Only missing atoms are yielded (no duplicates).

A backend may declare ``preferred_batch``: the fewest completions per ``generate`` call that keep it efficient
(vLLM schedules continuously, and a small chunk waits for its slowest completion). Chunks are then at least
that big; the chunk size still depends only on the backend and the caller's size, so resume is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from skillfactory.generation.base import Backend, Completion, GenerationRequest, SamplingParams


@dataclass(frozen=True)
class Unit:
    key: Any  # hashable id of the unit, e.g. (question_id, variant) or a sample id
    request: GenerationRequest
    payload: Any = None  # whatever the stage needs to turn a completion into a record


def chunk_units(units: Sequence[Unit], n: int, chunk_completions: int) -> list[list[Unit]]:
    """Fixed chunks of about ``chunk_completions`` completions each (at least one unit per chunk)."""
    size = max(1, chunk_completions // n)
    return [list(units[k:k + size]) for k in range(0, len(units), size)]


def run_units(backend: Backend, units: Sequence[Unit], params: SamplingParams, done: set[tuple[Any, int]],
              chunk_completions: int = 512, *, label: str = "generating",
              quiet: bool = False) -> Iterator[tuple[Unit, int, Completion]]:
    """Yield ``(unit, index, completion)`` for every atom not in ``done``, chunk by chunk, with a progress bar."""
    total = len(units) * params.n
    already = sum(1 for u in units for i in range(params.n) if (u.key, i) in done)
    with GenerationProgress(label, total, already, quiet=quiet) as bar:
        chunk_completions = max(chunk_completions, getattr(backend, "preferred_batch", 1))  # optional, see above
        for chunk in chunk_units(units, params.n, chunk_completions):
            missing = [(u, i) for u in chunk for i in range(params.n) if (u.key, i) not in done]
            if not missing:
                continue
            bar.chunk_start()
            results = backend.generate([u.request for u in chunk], params, progress=bar.update)
            bar.chunk_end(len(missing))
            by_key = {u.key: comps for u, comps in zip(chunk, results)}
            for u, i in missing:
                yield u, i, by_key[u.key][i]


class GenerationProgress:
    """A rich progress bar counting completions, with generated tokens/s. Silent when ``quiet``.

    The backend's callback reports every completion of a chunk, including atoms that were already done (the
    chunk is regenerated whole); the bar counts only new ones by reconciling at the end of each chunk.
    """

    def __init__(self, label: str, total: int, already: int, quiet: bool = False):
        self.label, self.total, self.quiet = label, total, quiet
        self.completed = already
        self.tokens = 0
        self.t0 = time.monotonic()
        self._chunk_base = already
        self._progress = None
        self._task = None

    def __enter__(self) -> GenerationProgress:
        if not self.quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, completed=self.completed, rate="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(time.monotonic() - self.t0, 1e-9)

    def chunk_start(self) -> None:
        self._chunk_base = self.completed

    def update(self, completions: int, tokens: int) -> None:
        self.tokens += tokens
        self.completed = min(self.total, self.completed + completions)
        self._refresh()

    def chunk_end(self, new_atoms: int) -> None:
        self.completed = self._chunk_base + new_atoms
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.completed, rate=f"{self.tokens_per_second:,.0f} tok/s")
