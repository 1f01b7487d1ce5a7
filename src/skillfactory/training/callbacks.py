"""The per-step train log: one JSON object per logged step in ``OUT/train_log.jsonl``.

Why our own file and not only TRL's ``report_to``: the log is the stage's contract with the report (which reads
saved files only), and it must look the same for SFT and GRPO whatever tracker the user picked. TRL's metric
names are mapped to short stable ones (``reward`` -> ``reward_mean``, ``completions/mean_length`` ->
``completion_length``, ...); every other numeric TRL metric is kept under its own name.

Resume: a run that crashed after its last checkpoint logged steps that the resumed run will log again, so on
resume the log is cut back to the checkpoint's step before appending.

The console gets one progress bar instead (:class:`ProgressBarCallback`): transformers' own tqdm bar writes the
raw logs dict of every step under it, and its ``PrinterCallback`` prints them; both are removed from the trainer.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from skillfactory.console import StepProgress
from skillfactory.records import JsonlAppender, atomic_write_text

#: TRL metric name -> name in our train log.
RENAMES = {
    "reward": "reward_mean",
    "completions/mean_length": "completion_length",
    "completions/clipped_ratio": "clipped_ratio",
    "skills/attempts": "attempts",
    "skills/reflections": "reflections",
    "skills/verdicts": "verdicts",
    "learning_rate": "lr",
}


def log_row(stage: str, step: int, epoch: float | None, logs: dict[str, Any]) -> dict[str, Any]:
    """One train-log row from a TRL ``logs`` dict: stage, step, epoch, loss, then the mapped metrics."""
    row: dict[str, Any] = {"stage": stage, "step": step, "epoch": epoch, "loss": None}
    for key, value in logs.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        row[RENAMES.get(key, key)] = value
    return row


class TrainLogCallback(TrainerCallback):
    """Append one row per training log event (not eval, not the final ``train_runtime`` summary)."""

    def __init__(self, path: str | Path, stage: str):
        self.path = Path(path)
        self.stage = stage

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            truncate_log(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or "train_runtime" in logs:
            return
        if any(k.startswith("eval_") for k in logs):
            return
        with JsonlAppender(self.path) as w:
            w.write(log_row(self.stage, state.global_step, state.epoch, logs))


class ProgressBarCallback(TrainerCallback):
    """The console view of a training stage, on the main process only: one bar with step/total, the latest value
    of ``metric`` (a key of TRL's logs: ``loss`` for SFT, ``reward`` for GRPO) and the time left, then one line:
    ``sft: 40/40 steps in 61.2 s, loss 2.315 -> 0.842``."""

    def __init__(self, stage: str, metric: str):
        self.stage, self.metric = stage, metric
        self.bar: StepProgress | None = None
        self.values: list[float] = []
        self.t0 = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = StepProgress(self.stage, total=state.max_steps, completed=state.global_step,
                                    metric=self.metric).start()
            self.values, self.t0 = [], time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        value = (logs or {}).get(self.metric)
        if self.bar is not None and isinstance(value, (int, float)) and "train_runtime" not in logs:
            self.values.append(float(value))
            self.bar.update(state.global_step, value=float(value))

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is None:
            return
        line = f"{self.stage}: {state.global_step}/{state.max_steps} steps in {time.monotonic() - self.t0:.1f} s"
        if self.values:
            line += f", {self.metric} {self.values[0]:.3f} -> {self.values[-1]:.3f}"
        self.close(line)

    def close(self, summary: str | None = None) -> None:
        """Clear the bar (a crashed run must give the terminal back too); a second call does nothing."""
        if self.bar is not None:
            self.bar.stop(summary)
            self.bar = None


def show_progress(trainer, stage: str, metric: str) -> None:
    """Put our progress bar on ``trainer`` in place of transformers' tqdm bar and logs printer."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # what transformers adds with disable_tqdm=True
    trainer.remove_callback(ProgressCallback)  # and without it
    trainer.add_callback(ProgressBarCallback(stage, metric))


def close_progress(trainer) -> None:
    """Clear the progress bar of a run that stopped without ``on_train_end`` (an exception, Ctrl-C)."""
    for cb in trainer.callback_handler.callbacks:
        if isinstance(cb, ProgressBarCallback):
            cb.close()


def truncate_log(path: Path, step: int) -> int:
    """Drop rows logged after ``step`` (work lost with a crash); returns how many were dropped."""
    if not path.exists():
        return 0
    keep, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # torn tail of a crash
            dropped += 1
            continue
        if int(row.get("step", 0)) > step:
            dropped += 1
        else:
            keep.append(line)
    if dropped:
        atomic_write_text(path, "".join(line + "\n" for line in keep))
    return dropped
