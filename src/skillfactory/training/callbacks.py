"""The per-step train log: one JSON object per logged step in ``OUT/train_log.jsonl``.

Why our own file and not only TRL's ``report_to``: the log is the stage's contract with the report (which reads
saved files only), and it must look the same for SFT and GRPO whatever tracker the user picked. TRL's metric
names are mapped to short stable ones (``reward`` -> ``reward_mean``, ``completions/mean_length`` ->
``completion_length``, ...); every other numeric TRL metric is kept under its own name.

Resume: a run that crashed after its last checkpoint logged steps that the resumed run will log again, so on
resume the log is cut back to the checkpoint's step before appending.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

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
