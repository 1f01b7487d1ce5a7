"""What a stage shows on the console: one progress bar and one summary line. Library chatter goes to a file.

Why: a pipeline run is a dozen stages, and the libraries under them each print their own way - transformers a
"Loading weights" bar per model load and the raw metrics dict of every training step, datasets a bar per
``map``, TRL and transformers deprecation warnings once per process. A person wants to see where the run is and
how long is left. So each stage gets a :class:`StepProgress` bar (done/total, its one metric, time left), and
:func:`library_log` sends the libraries' log records and Python warnings to ``OUT/log.txt`` in the stage's folder;
the per-step metrics are kept in full in the training stages' ``train_log.jsonl``.

What cannot be routed: warnings that C++ code prints itself (torch's DDP ``find_unused_parameters`` reducer
warning, ``[W ...]`` lines from c10) go straight to the process's stderr, past Python.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

#: The stage folder's log of library messages.
LOG_FILE = "log.txt"
#: Loggers whose records go to the log file instead of the console (they stop propagating while routed).
LIBRARY_LOGGERS = ("transformers", "trl", "datasets", "accelerate", "peft", "huggingface_hub", "py.warnings")
#: Our own loggers: copied to the log file, still shown on the console.
OWN_LOGGERS = ("skillfactory",)
#: Seconds between two plain progress lines where a bar cannot redraw (a log file, CI).
HEARTBEAT_S = 60.0


#: Columns of tables where the output is not a terminal (a log, CI), where rich would use 80.
LOG_WIDTH = 160


@contextlib.contextmanager
def log_width(console: Console, columns: int = LOG_WIDTH) -> Iterator[Console]:
    """``console`` at least ``columns`` wide for the block when it is not a terminal: a log has no edge at 80
    columns, and there a table's cells (intervals, folders) broke over lines or were cut."""
    width = console.width
    if not console.is_terminal:
        console.width = max(width, columns)
    try:
        yield console
    finally:
        console.width = width


# ---- the progress bar ------------------------------------------------------------------------------------------
class StepProgress:
    """One progress bar: label, bar, done/total, one metric, time elapsed and left; then a summary line.

    On a terminal the bar redraws in place and is cleared at the end, leaving the summary line. Where a bar cannot
    redraw (output to a file, CI) it prints a plain line with the same figures at most every ``heartbeat``
    seconds. Nothing is printed when ``quiet``.

        >>> with StepProgress("pretraining", total=100, unit="updates", metric="loss") as bar:
        ...     for i in range(100):
        ...         bar.update(i + 1, value=loss)
    """

    def __init__(self, label: str, total: int, *, unit: str = "steps", metric: str | None = None,
                 completed: int = 0, console: Console | None = None, quiet: bool = False,
                 heartbeat: float = HEARTBEAT_S):
        self.label, self.unit, self.metric = label, unit, metric
        self.total, self.completed, self.value = total, completed, None
        self.note: str | None = None  # a figure given as text (``8,375 tok/s``), shown instead of the metric
        self.console = console or Console(stderr=True)
        self.quiet = quiet or self.console.quiet
        self.heartbeat = heartbeat
        self._progress: Any = None
        self._task: Any = None
        self._last_line = 0.0

    @property
    def live(self) -> bool:
        """Whether the bar redraws in place (a real terminal or a notebook)."""
        c = self.console
        return c.is_jupyter or (c.is_terminal and not c.is_dumb_terminal)

    def start(self) -> StepProgress:
        if self.quiet or self._progress is not None:
            return self
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.progress import TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit),
            TextColumn("{task.fields[figure]}"), TimeElapsedColumn(), TextColumn("elapsed"),
            TimeRemainingColumn(), TextColumn("left"), console=self.console, transient=True,
            disable=not self.live)  # off a terminal rich would print the bar once and a blank line: lines instead
        self._progress.start()
        # the bar's columns read markup: a label or note in brackets (``addsum[digits=1]``) is escaped
        self._task = self._progress.add_task(escape(self.label), total=self.total, completed=self.completed,
                                             figure=escape(self._figure()))
        self._last_line = time.monotonic()
        return self

    def update(self, completed: int, value: float | None = None, total: int | None = None,
               note: str | None = None) -> None:
        """Move the bar to ``completed`` (of ``total`` when given); ``value`` is the metric's latest figure,
        ``note`` a figure as text (a rate) shown in its place."""
        self.completed = completed
        if value is not None:
            self.value = value
        if note is not None:
            self.note = note
        if total is not None:
            self.total = total
        if self._progress is None:
            return
        self._progress.update(self._task, completed=completed, total=self.total, figure=escape(self._figure()))
        now = time.monotonic()
        if not self.live and now - self._last_line >= self.heartbeat and completed < self.total:
            self._last_line = now
            self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)

    def line(self) -> str:
        """The bar's figures as one plain line: ``label 40/200 steps, loss 1.234, 0:01:10 elapsed, 0:04:40 left``."""
        task = self._progress.tasks[0] if self._progress is not None else None
        elapsed = task.elapsed if task is not None else None
        left = task.time_remaining if task is not None else None
        parts = [f"{self.label} {self.completed}/{self.total} {self.unit}"]
        if self._figure():
            parts.append(self._figure())
        parts.append(f"{_clock(elapsed)} elapsed")
        parts.append(f"{_clock(left)} left")
        return ", ".join(parts)

    def stop(self, summary: str | None = None) -> None:
        """Clear the bar and print ``summary`` as its one closing line; a second call does nothing."""
        if self._progress is None:
            return
        self._progress.stop()
        self._progress = None
        if summary:
            self.console.print(summary, markup=False, highlight=False, soft_wrap=True)

    def _figure(self) -> str:
        if self.note is not None:
            return self.note
        if self.metric is None:
            return ""
        return f"{self.metric} {'-' if self.value is None else f'{self.value:.3f}'}"

    def __enter__(self) -> StepProgress:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _clock(seconds: float | None) -> str:
    return "-:--:--" if seconds is None else str(timedelta(seconds=int(seconds)))


# ---- library chatter -> OUT/log.txt -----------------------------------------------------------------------------
@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """Turn off the progress bars of transformers, datasets and huggingface_hub (model loads and saves, dataset
    maps, downloads) for the block; our own bars replace them. Each library's previous setting is restored."""
    import datasets.utils as ds
    import huggingface_hub.utils as hub

    before = ds.is_progress_bar_enabled(), hub.are_progress_bars_disabled()
    with warnings.catch_warnings():  # an env var forcing bars on (HF_*_DISABLE_PROGRESS_BARS=0) wins, silently
        warnings.simplefilter("ignore")
        ds.disable_progress_bars()
        hub.disable_progress_bars()
    try:
        with no_weight_loading_bar():
            yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if before[0]:
                ds.enable_progress_bars()
            if not before[1]:
                hub.enable_progress_bars()


@contextlib.contextmanager
def no_weight_loading_bar() -> Iterator[None]:
    """Turn off transformers' progress bars for the block (its "Loading weights" bar on every model load), then
    restore them: a stage command run on its own prints its bar and summary only, as inside ``skillfactory run``.
    Only transformers: importing ``datasets`` for :func:`quiet_progress_bars` would slow a sampling start."""
    import transformers.utils.logging as tf

    before = tf.is_progress_bar_enabled()
    tf.disable_progress_bar()
    try:
        yield
    finally:
        if before:
            with warnings.catch_warnings():  # an env var forcing bars off wins, with a warning
                warnings.simplefilter("ignore")
                tf.enable_progress_bar()


@contextlib.contextmanager
def library_log(folder: str | Path) -> Iterator[Path]:
    """For the block: library log records (INFO and up) and Python warnings go to ``folder/log.txt``, appended,
    instead of the console; library progress bars are off. Our own warnings are copied there and still shown.

    Nests: an inner block (a stage inside a pipeline run) takes over and gives the outer one back on exit. Every
    process of a multi-process training run appends to the same file, each line tagged with its rank.
    """
    import datasets.utils.logging  # noqa: F401  - each library sets up its own logger first, not inside the block
    import transformers.utils.logging as tf_logging

    tf_logging.get_verbosity()  # transformers adds its console handler on first use: make that now
    path = Path(folder) / LOG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    rank = f" rank {os.environ['RANK']}" if int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s{rank}: %(message)s"))
    handler.emit(logging.makeLogRecord({"name": "skillfactory", "levelname": "INFO", "levelno": logging.INFO,
                                        "msg": "pid %d: %s", "args": (os.getpid(), " ".join(sys.argv))}))
    saved = []
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.handlers[:], logger.propagate, logger.level))
        logger.handlers = [handler]
        logger.propagate = False
        logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    for name in OWN_LOGGERS:
        logging.getLogger(name).addHandler(handler)
    show_before = warnings.showwarning
    warnings.showwarning = _warning_to_log
    try:
        with quiet_progress_bars():
            yield path
    finally:
        warnings.showwarning = show_before
        for name in OWN_LOGGERS:
            logging.getLogger(name).removeHandler(handler)
        for logger, handlers, propagate, level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(level)
        handler.close()


def _warning_to_log(message, category, filename, lineno, file=None, line=None) -> None:
    """``warnings.showwarning`` while routed: the formatted warning as a record of the ``py.warnings`` logger."""
    text = warnings.formatwarning(message, category, filename, lineno, line).rstrip()
    logging.getLogger("py.warnings").warning("%s", text)
