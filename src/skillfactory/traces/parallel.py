"""Run a function over chunks of work in forked worker processes, results in order.

Why fork: the workers need the loaded corpus (0.5-1 GB of pools or attempt columns, and texts, at the published
scale); a forked child shares it with the parent page by page instead of receiving a copy, so starting a worker
costs milliseconds and no memory until it writes. Only on Linux, where fork is the platform's default and its
libraries (pyarrow's thread pools, msgspec) are fork-safe; elsewhere, or for one worker, the chunks run here.

Order and memory: chunks are handed out ``ahead`` per worker at a time and their results returned in the
order of the chunks, so the caller writes the same bytes as a serial run and at most
``workers * ahead`` results wait in memory.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: What the forked workers call: set by :func:`ordered_map` before the fork, inherited by the children.
_TASK: tuple[Callable[..., Any], tuple[Any, ...]] | None = None


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the machine's count: containers restrict it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def forkable(workers: int) -> int:
    """The workers that will run: ``workers`` on Linux, else 1 (no fork there; the chunks run here)."""
    return workers if sys.platform == "linux" else 1


def default_workers(n_items: int, min_items: int) -> int:
    """Workers for ``n_items`` chunks: one per CPU (at most 4) on Linux when there are at least ``min_items``
    chunks; else 1 (starting processes would cost more than they save)."""
    return forkable(max(1, min(4, available_cpus()))) if n_items >= min_items else 1


#: Free space ``/dev/shm`` must have to take the parts in flight (a few hundred MB for long traces).
SHM_ROOM = 1 << 30


@contextmanager
def handoff_folder(workers: int, near: str | os.PathLike) -> Iterator[str | None]:
    """A private folder for the workers' results, removed with whatever is left in it (a crash, Ctrl-C); None
    for one worker, whose results need no handing over.

    In ``/dev/shm`` when it has :data:`SHM_ROOM` free (memory: on this machine the build phase of 30,000
    questions took 6.4-7.1 s with it there vs 7.4-7.6 s on disk, side by side), else beside ``near`` on the output's
    file system: containers often give ``/dev/shm`` only 64 MB (Docker's default).
    """
    if forkable(workers) <= 1:
        yield None
        return
    parent = Path("/dev/shm") if _room(Path("/dev/shm")) else Path(near).parent
    parent.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix=f".skillfactory-{Path(near).name}-parts-", dir=parent)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _room(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return os.access(folder, os.W_OK) and st.f_bavail * st.f_frsize >= SHM_ROOM


def ordered_map(fn: Callable[..., Any], items: Iterable[Any], *, state: tuple[Any, ...] = (), workers: int = 1,
                ahead: int = 2) -> Iterator[Any]:
    """``fn(*state, item)`` for each item, in order; in ``workers`` forked processes when ``workers > 1``.

    The workers are forked here, at the call, not when the results are first asked for: start them before
    any thread (a fork copies a lock another thread holds). ``fn`` and ``state`` reach them by fork (never
    pickled); each item and result is pickled. An exception in a worker is raised when its result is due;
    closing the iterator (``contextlib.closing``) or leaving it unfinished stops the workers.
    """
    if forkable(workers) <= 1:
        return (fn(*state, item) for item in items)
    import multiprocessing
    import signal

    global _TASK
    _TASK = (fn, state)
    try:
        with _ctrl_c_held() as held:
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=_quiet_on_ctrl_c)
    finally:
        _TASK = None  # the children hold their copy; the parent keeps no reference to the state
    if held:
        try:
            signal.raise_signal(signal.SIGINT)  # the Ctrl-C that came while forking, to the handler it was for
        except BaseException:
            pool.terminate()
            pool.join()
            raise
    return _Results(pool, items, workers * ahead)


@contextmanager
def _ctrl_c_held() -> Iterator[list[int]]:
    """Hold back Ctrl-C: raised inside fork's own handlers it is lost ("Exception ignored") and the run goes
    on. The list is non-empty when one came; the caller raises it again once the handler before is back.

    A Python-level handler, not a blocked signal mask: the mask is per thread, and a terminal's Ctrl-C goes
    to the process, so the kernel hands it to any other thread that has it unblocked (a library's pool
    thread), and Python runs the handler in the main thread when that thread has taken it - in the fork
    again, or later (most likely what interrupted a CI run of the suite after this module's Ctrl-C test).
    Python runs handlers only in the main thread, so called from another thread there is nothing to hold back.
    """
    import signal
    import threading

    held: list[int] = []
    before = signal.getsignal(signal.SIGINT)
    # a handler installed from C (getsignal gives None) could not be put back: leave it alone
    if threading.current_thread() is not threading.main_thread() or before is None:
        yield held
        return
    signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, before)


class _Results:
    """The results in order, ``window`` chunks in flight; :meth:`close` stops the workers even when no result
    was asked for (a generator's ``finally`` would not run then)."""

    def __init__(self, pool: Any, items: Iterable[Any], window: int):
        self._pool, self._items, self._window = pool, iter(items), window
        self._queued: deque = deque()

    def __iter__(self) -> _Results:
        return self

    def __next__(self) -> Any:
        while len(self._queued) < self._window:
            item = next(self._items, _END)
            if item is _END:
                break
            self._queued.append(self._pool.apply_async(_run, (item,)))
        if not self._queued:
            self.close()
            raise StopIteration
        try:
            return self._queued.popleft().get()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._queued.clear()
        self._pool.terminate()
        self._pool.join()


_END = object()


def _quiet_on_ctrl_c() -> None:
    """Ctrl-C reaches every process of the terminal's group: the parent stops the workers, so a worker
    ignores it instead of printing a traceback of its own."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(item: Any) -> Any:
    assert _TASK is not None, "ordered_map's worker started without its task"
    fn, state = _TASK
    return fn(*state, item)
