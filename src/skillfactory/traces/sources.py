"""Inputs of the trace builder: our own ``samples.jsonl`` + ``reflections.jsonl`` -> per-question attempt pools.

Why not ``records.read_jsonl``: the published scale (10k questions x 64 attempts x 4 reflections) is ~1 GB of
JSONL; holding it as record objects would take several GB. Files are streamed line by line, only what a
trace needs to *choose* attempts is kept (truth, variant, answer, kept-reflection indexes), and texts are
referenced by byte offset and read back only for the attempts that end up in a trace.

An attempt is usable when it is not skipped, its text is non-empty and holds no trace structure tags, a
correct one has an extracted answer, and it has at least one kept reflection whose verdict and truth agree
with the sample's own correctness. Everything else is counted by reason in the summary.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from skillfactory.errors import SkillFactoryError
from skillfactory.records import SCHEMA_VERSION, Question, Sample, sample_id
from skillfactory.traces.formats import STRUCTURE_TAGS, Attempt, Pool

log = logging.getLogger(__name__)
R = TypeVar("R", bound=BaseModel)


class TraceInputError(SkillFactoryError, ValueError):
    """An input file of the trace builder that is missing, empty or malformed; names file, line/row, field."""


@dataclass
class Unit:
    """One question ready for trace building: its user turn, its usable attempts, and a verifier if known."""

    question_id: str
    prompt: str
    pool: Pool
    check: Callable[[str], bool] | None = None  # final answer -> verifies? (None: no task object, raw input)


@dataclass
class Corpus:
    """Units sorted by question id, plus where to read texts from and what was dropped on the way."""

    units: list[Unit]
    sample_text: Callable[[int], str]
    reflection_text: Callable[[int], str]
    attempts: Counter = field(default_factory=Counter)  # total, usable, unusable:<reason>
    reflections: Counter = field(default_factory=Counter)  # total, kept, usable, <reason>
    close: Callable[[], None] = lambda: None


_STRUCTURE_TAG = re.compile("|".join(re.escape(t) for t in STRUCTURE_TAGS))


def has_structure_tag(text: str) -> bool:
    """Does a text hold a tag of the trace structure (<think>, <sample>, <reflect> or their closers)?"""
    return _STRUCTURE_TAG.search(text) is not None


def unusable_reason(text: str, correct: bool, answer: str | None, skipped: bool = False) -> str | None:
    """Why an attempt cannot go into a trace (before looking at its reflections), or None."""
    if skipped:
        return "skipped"
    if not text.strip():
        return "empty_text"
    if has_structure_tag(text):
        return "tag_in_text"
    if correct and answer is None:
        return "correct_without_answer"
    return None


# ---- streaming JSONL with byte offsets ------------------------------------------------------------------------
class _Head(BaseModel):
    """Only the fields the builder reads (parsing less is ~30% faster at 640k samples); others are ignored."""

    model_config = ConfigDict(extra="ignore")
    schema_version: int = SCHEMA_VERSION


class _QuestionHead(_Head):
    id: str


class _SampleHead(_Head):
    question: _QuestionHead
    variant: str
    index: int
    text: str
    extracted: str | None
    correct: bool
    finish_reason: str


class _ReflectionHead(_Head):
    sample_id: str
    index: int
    text: str
    verdict: bool | None
    truth: bool
    kept: bool


def _not_kept(line: bytes) -> bool:
    """True for a reflection line whose ``kept`` is false, without parsing it. Safe on raw bytes: Reflection
    is a flat record, and inside its string values every quote is escaped, so an unescaped ``"kept": false``
    can only be the field itself."""
    return b'"kept": false' in line or b'"kept":false' in line


def _scan(path: Path, cls: type[R], what: str,
          skip: Callable[[bytes], bool] | None = None) -> Iterator[tuple[int, R | None, bytes]]:
    """Yield (byte offset of the line, record, line) per line; ``record`` is None for lines ``skip`` accepts.

    Errors name file, line and field; a torn last line (an interrupted write) is skipped with a warning.
    """
    if not path.exists():
        raise TraceInputError(f"{path}: file not found (expected {what})")
    seen = False
    with path.open("rb") as f:
        offset = 0
        for lineno, line in enumerate(f, start=1):
            start, offset = offset, offset + len(line)
            if skip is not None and line.endswith(b"\n") and skip(line):
                seen = True
                yield start, None, line
                continue
            if not line.strip():
                continue
            try:
                rec = cls.model_validate_json(line)
            except ValidationError as e:
                first = e.errors()[0]
                if first["type"] == "json_invalid" and not line.endswith(b"\n"):
                    log.warning("%s:%d: skipping torn last line (an interrupted write)", path, lineno)
                    break
                loc = ".".join(str(p) for p in first["loc"]) or "<record>"
                raise TraceInputError(f"{path}:{lineno}: field '{loc}': {first['msg']} (expected {what})") from None
            if rec.schema_version != SCHEMA_VERSION:  # type: ignore[attr-defined]
                raise TraceInputError(f"{path}:{lineno}: schema_version {rec.schema_version}, "  # type: ignore[attr-defined]
                                      f"this skillfactory reads {SCHEMA_VERSION}")
            seen = True
            yield start, rec, line
    if not seen:
        raise TraceInputError(f"{path}: no records (expected {what})")


class _LineTexts:
    """Read the ``text`` field of the JSON line starting at a byte offset.

    ``os.pread`` rather than a memory map: touched pages of a map count as resident memory, and a build
    touches pages all over a multi-GB file.
    """

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_RDONLY)

    def __call__(self, offset: int) -> str:
        chunk, size = b"", 1 << 14
        while True:
            part = os.pread(self._fd, size, offset + len(chunk))
            chunk += part
            end = chunk.find(b"\n")
            if end != -1 or len(part) < size:
                return json.loads(chunk[: end if end != -1 else len(chunk)])["text"]
            size *= 2

    def close(self) -> None:
        os.close(self._fd)


# ---- our records --------------------------------------------------------------------------------------------
def _kept_reflections(path: Path, stats: Counter) -> dict[str, list[int]]:
    """sample id -> flat [index, offset, truth, index, offset, truth, ...] of its usable kept reflections."""
    out: dict[str, list[int]] = {}
    what = "Reflection records (the reflection stage's reflections.jsonl)"
    for offset, r, _ in _scan(path, _ReflectionHead, what, skip=_not_kept):
        stats["total"] += 1
        if r is None or not r.kept:
            stats["not_kept"] += 1
            continue
        stats["kept"] += 1
        if r.verdict is None or r.verdict != r.truth:
            stats["verdict_differs_from_truth"] += 1
        elif has_structure_tag(r.text):
            stats["tag_in_text"] += 1
        else:
            out.setdefault(r.sample_id, []).extend((r.index, offset, int(r.truth)))
    return out


def load_records(samples: str | Path, reflections: str | Path) -> Corpus:
    """Read our sampling/reflection outputs into per-question pools (see the module docstring)."""
    samples, reflections = Path(samples), Path(reflections)
    rstats: Counter = Counter()
    astats: Counter = Counter()
    kept = _kept_reflections(reflections, rstats)

    questions: dict[str, Question] = {}
    attempts: dict[str, list[Attempt]] = {}
    seen: dict[str, set[tuple[str, int]]] = {}
    what = "Sample records (the sampling stage's samples.jsonl)"
    for offset, s, line in _scan(samples, _SampleHead, what):
        qid = s.question.id
        if qid not in questions:
            try:
                questions[qid] = Sample.model_validate_json(line).question
            except ValidationError as e:
                first = e.errors()[0]
                loc = ".".join(str(p) for p in first["loc"])
                raise TraceInputError(f"{samples}: sample {qid}: field '{loc}': {first['msg']} ({what})") from None
            attempts[qid], seen[qid] = [], set()
        key = (s.variant, s.index)
        if key in seen[qid]:
            astats["duplicate"] += 1
            continue
        seen[qid].add(key)
        astats["total"] += 1
        sid = sample_id(qid, s.variant, s.index)
        refl = kept.pop(sid, [])
        reason = unusable_reason(s.text, s.correct, s.extracted, s.finish_reason == "skipped")
        idx: list[int] = []
        refs: list[int] = []
        for i in range(0, len(refl), 3):
            if bool(refl[i + 2]) != s.correct:
                rstats["truth_differs_from_sample"] += 1
            elif refl[i] in idx:
                rstats["duplicate"] += 1
            else:
                idx.append(refl[i])
                refs.append(refl[i + 1])
        if reason is None and not idx:
            reason = "no_kept_reflection"
        if reason is not None:
            astats[f"unusable:{reason}"] += 1
            continue
        astats["usable"] += 1
        rstats["usable"] += len(idx)
        order = sorted(range(len(idx)), key=idx.__getitem__)
        attempts[qid].append(Attempt(qid, sys.intern(s.variant), s.index, s.correct, s.extracted, offset,
                                     tuple(idx[k] for k in order), tuple(refs[k] for k in order)))
    rstats["without_sample"] += sum(len(v) // 3 for v in kept.values())
    del kept, seen

    tasks: dict[str, Any] = {}
    units = [_unit(questions[qid], attempts.pop(qid), tasks) for qid in sorted(questions)]
    s_texts, r_texts = _LineTexts(samples), _LineTexts(reflections)

    def close() -> None:
        s_texts.close()
        r_texts.close()

    return Corpus(units, s_texts, r_texts, astats, rstats, close)


def _unit(q: Question, attempts: list[Attempt], tasks: dict[str, Any]) -> Unit:
    """The user turn is the question in the ``original`` prompt; the task also verifies the final answer."""
    from skillfactory.tasks import task_for

    key = json.dumps([q.task, q.params], sort_keys=True, default=str)
    task = tasks.get(key)
    if task is None:
        task = tasks[key] = task_for(q)

    def check(final: str, _q: Question = q, _task: Any = task) -> bool:
        return _task.check(_q, f"<answer>{final}</answer>").correct

    return Unit(q.id, task.prompt(q, "original"), Pool(q.id, attempts), check)
