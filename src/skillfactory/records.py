"""Frozen record types written between stages, and crash-safe JSONL I/O.

Every stage reads and writes files of these records, so any stage can be re-run, resumed or inspected.
Records carry ``schema_version`` so a reader can refuse (or migrate) files written by another version.

Why JSONL and not parquet for stage outputs: a stage appends one line per finished unit of work, so a crash
or Ctrl-C loses only the work in flight. On resume, a torn last line (the write that was interrupted) is
dropped with a warning and the file is truncated back to its last complete line before appending again.

Example::

    >>> q = Question(id="countdown/s0/train/00000", task="countdown", params={"num_args": 3},
    ...              fields={"numbers": [3, 5, 7], "target": 22}, gold="3*5+7")
    >>> write_jsonl("q.jsonl", [q]); read_jsonl("q.jsonl", Question)[0] == q
    True
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skillfactory.errors import SkillFactoryError

SCHEMA_VERSION = 1
log = logging.getLogger(__name__)


class RecordError(SkillFactoryError, ValueError):
    """A record file that does not hold what was expected; the message names file, line and field."""


class Record(BaseModel):
    """Base of all records: frozen, unknown fields rejected, versioned."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = SCHEMA_VERSION


class Question(Record):
    """One task instance. ``fields`` hold what the prompt is built from (e.g. numbers and target);
    ``gold`` is a reference answer that the task's verifier accepts."""

    id: str
    task: str
    params: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, Any] = Field(default_factory=dict)
    gold: str
    split: str = "train"
    metadata: dict[str, Any] = Field(default_factory=dict)


class Sample(Record):
    """One model attempt at a question, in one prompt variant, already verified."""

    question: Question
    variant: str
    index: int
    prompt: str
    text: str
    extracted: str | None
    correct: bool
    why: str  # "ok" when correct, else the verifier's reason (no_answer, wrong_value, ...)
    n_tokens: int
    finish_reason: str  # stop | length | skipped
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        return sample_id(self.question.id, self.variant, self.index)


def sample_id(question_id: str, variant: str, index: int) -> str:
    return f"{question_id}|{variant}|{index}"


class Reflection(Record):
    """One reflection on one sample; kept only when its verdict equals the verifier's truth."""

    sample_id: str
    question_id: str
    index: int
    text: str
    verdict: bool | None  # True = "Correct", False = "Incorrect", None = not exactly one parseable verdict
    truth: bool
    kept: bool
    n_tokens: int
    finish_reason: str
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.sample_id}|r{self.index}"


class Trace(Record):
    """One silver trace as a chat example (user question + assistant trace)."""

    id: str
    question_id: str
    format: str
    messages: list[dict[str, str]]
    n_attempts: int
    sample_ids: list[str]
    reflection_ids: list[str]
    final_correct: bool


R = TypeVar("R", bound=BaseModel)


def _format_validation_error(path: Path, lineno: int, err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "<record>"
    return f"{path}:{lineno}: field '{field}': {first['msg']} (got {first.get('input')!r:.80})"


def iter_jsonl(path: str | os.PathLike, cls: type[R] | None = None, *, tolerate_torn_tail: bool = True,
               numbered: bool = False) -> Iterator[Any]:
    """Yield records (or plain dicts when ``cls`` is None) from a JSONL file; ``numbered``: ``(line, record)``
    pairs, the line as an editor counts it (blank lines included), for a caller's own error messages.

    A last line without a trailing newline that does not parse is a torn write from a crash: it is skipped
    with a warning. Any other bad line raises :class:`RecordError` naming the file, line and field.
    """
    path = Path(path)
    if not path.exists():
        raise RecordError(f"{path}: file not found")
    with path.open("rb") as f:  # line by line: memory stays one line, not the file (traces.jsonl is 1 GB)
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                if tolerate_torn_tail and not raw.endswith(b"\n"):  # only the last line can lack its newline
                    log.warning("%s:%d: skipping torn last line (an interrupted write)", path, lineno)
                    return
                raise RecordError(f"{path}:{lineno}: not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None
            if not isinstance(obj, dict):
                raise RecordError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            if cls is None:
                yield (lineno, obj) if numbered else obj
                continue
            version = obj.get("schema_version", SCHEMA_VERSION)
            if version != SCHEMA_VERSION:
                raise RecordError(f"{path}:{lineno}: schema_version {version}, "
                                  f"this skillfactory reads {SCHEMA_VERSION}")
            try:
                record = cls.model_validate(obj)
            except ValidationError as e:
                raise RecordError(_format_validation_error(path, lineno, e)) from None
            yield (lineno, record) if numbered else record


def read_jsonl(path: str | os.PathLike, cls: type[R] | None = None, **kw: Any) -> list[Any]:
    return list(iter_jsonl(path, cls, **kw))


def _dump(record: BaseModel | dict) -> str:
    obj = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a whole file so that readers see the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | os.PathLike, records: Iterable[BaseModel | dict]) -> int:
    """Write all records atomically (temp file + rename). Returns the number written."""
    lines = [_dump(r) for r in records]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def repair_torn_tail(path: str | os.PathLike) -> int:
    """Truncate a JSONL file back to its last complete line; returns bytes removed (0 when clean)."""
    path = Path(path)
    if not path.exists():
        return 0
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as f:
        # read backwards to the last newline
        pos = size
        chunk = 4096
        tail = b""
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            f.seek(pos)
            tail = f.read(step) + tail
            idx = tail.rfind(b"\n")
            if idx != -1:
                keep = pos + idx + 1
                break
        else:
            keep = 0
        if keep < size:
            log.warning("%s: dropping %d bytes of a torn last line (an interrupted write)", path, size - keep)
            f.truncate(keep)
        return size - keep


class JsonlAppender:
    """Append records one line at a time, flushed, so a crash loses at most the line in flight.

    Use as a context manager. On open, a torn last line left by an earlier crash is removed first.

        with JsonlAppender(out / "samples.jsonl") as w:
            for s in new_samples: w.write(s)
    """

    def __init__(self, path: str | os.PathLike, fsync_every: int = 64):
        self.path = Path(path)
        self.fsync_every = fsync_every
        self._n = 0
        self._f = None

    def __enter__(self) -> JsonlAppender:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        repair_torn_tail(self.path)
        self._f = self.path.open("a", encoding="utf-8")
        return self

    def write(self, record: BaseModel | dict) -> None:
        if self._f is None:
            raise RuntimeError("use JsonlAppender as a context manager")
        self._f.write(_dump(record) + "\n")
        self._f.flush()
        self._n += 1
        if self._n % self.fsync_every == 0:
            os.fsync(self._f.fileno())

    def __exit__(self, *exc: Any) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None
