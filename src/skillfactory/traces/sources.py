"""Inputs of the trace builder: our own ``samples.jsonl`` + ``reflections.jsonl`` -> per-question attempt pools.

Why not ``records.read_jsonl``: the published scale (10k questions x 64 attempts x 4 reflections) is 2.6 GB of
JSONL; holding it as record objects would take several GB. Files are streamed line by line, only what a
trace needs to *choose* attempts is kept (truth, variant, answer, kept-reflection indexes), and texts are
referenced by byte offset and read back only for the attempts that end up in a trace.

An attempt is usable when it is not skipped, its text (a leading ``<think>`` block unwrapped, see clean.py) is
non-empty and holds no trace structure tag and no chat special token, a correct one has an extracted answer,
and it has at least one kept reflection (screened the same way) whose verdict and truth agree with the
sample's own correctness. Everything else is counted by reason in the summary.
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
from typing import Any

import msgspec
from pydantic import ValidationError

from skillfactory.errors import SkillFactoryError
from skillfactory.records import SCHEMA_VERSION, Question, Sample, sample_id
from skillfactory.traces.clean import CHAT_SCREEN, TextScreen
from skillfactory.traces.formats import Attempt, Pool

log = logging.getLogger(__name__)


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


def unusable_reason(text: str, correct: bool, answer: str | None, skipped: bool = False,
                    screen: TextScreen = CHAT_SCREEN) -> str | None:
    """Why an attempt cannot go into a trace (before looking at its reflections), or None."""
    if skipped:
        return "skipped"
    text = screen.clean(text)
    if not text or text.isspace():  # as `not text.strip()`, without copying the text
        return "empty_text"
    refused = screen.refusal(text)
    if refused is not None:
        return refused
    if correct and answer is None:
        return "correct_without_answer"
    return None


def count_attempt(astats: Counter, rstats: Counter, reason: str | None, kept: int) -> bool:
    """Tally one attempt with ``kept`` kept reflections; whether it is usable. Both readers (ours and the raw
    layout's) count attempts this way, so their summaries use the same reasons."""
    if reason is None and not kept:
        reason = "no_kept_reflection"
    if reason is not None:
        astats[f"unusable:{reason}"] += 1
        return False
    astats["usable"] += 1
    rstats["usable"] += kept
    return True


# ---- streaming JSONL with byte offsets ------------------------------------------------------------------------
# Lines are decoded with msgspec into structs of only the fields the builder reads: unknown fields (the long
# prompt, token counts, ...) are skipped without building Python objects, and types are checked strictly
# (our files are written by pydantic, so a bool is a JSON bool). About 7x faster than pydantic per line,
# which is what reading 2.6 GB at the published scale is made of.
class _QuestionHead(msgspec.Struct):
    id: str


class _SampleHead(msgspec.Struct):
    question: _QuestionHead
    variant: str
    index: int
    text: str
    extracted: str | None
    correct: bool
    finish_reason: str
    schema_version: int = SCHEMA_VERSION


class _ReflectionHead(msgspec.Struct):
    sample_id: str
    index: int
    text: str
    verdict: bool | None
    truth: bool
    kept: bool
    schema_version: int = SCHEMA_VERSION


class _TextOnly(msgspec.Struct):
    text: str


_SAMPLE = msgspec.json.Decoder(_SampleHead)
_REFLECTION = msgspec.json.Decoder(_ReflectionHead)
_TEXT = msgspec.json.Decoder(_TextOnly)
_AT = re.compile(r" - at `\$(.*)`$")
_MISSING = re.compile(r"Object missing required field `(.+)`")


def _field_error(e: msgspec.ValidationError) -> str:
    """msgspec's "Expected `bool`, got `str` - at `$.correct`" as "field 'correct': expected `bool`, got `str`"."""
    msg, loc = str(e), ""
    at = _AT.search(msg)
    if at:
        msg, loc = msg[: at.start()], at[1].lstrip(".")
    missing = _MISSING.fullmatch(msg)
    if missing:
        msg, loc = "missing", f"{loc}.{missing[1]}".lstrip(".")
    return f"field '{loc or '<record>'}': {msg[:1].lower()}{msg[1:]}"


def _not_kept(line: bytes) -> bool:
    """True for a reflection line whose ``kept`` is false, without parsing it. Safe on raw bytes: Reflection
    is a flat record, and inside its string values every quote is escaped, so an unescaped ``"kept":`` can
    only be the field's key. Searched from the end, where writers put it (a miss only costs a full parse)."""
    i = line.rfind(b'"kept":')
    return i != -1 and (line.startswith(b'"kept": false', i) or line.startswith(b'"kept":false', i))


def _scan(path: Path, decoder: msgspec.json.Decoder, what: str,
          skip: Callable[[bytes], bool] | None = None) -> Iterator[tuple[int, Any, bytes]]:
    """Yield (byte offset of the line, record, line) per line; ``record`` is None for lines ``skip`` accepts.

    Errors name file, line and field; a torn last line (an interrupted write) is skipped with a warning.
    """
    if not path.exists():
        raise TraceInputError(f"{path}: file not found (expected {what})")
    seen = False
    decode = decoder.decode
    with path.open("rb") as f:
        offset = 0
        for lineno, line in enumerate(f, start=1):
            start = offset
            offset += len(line)
            if skip is not None and line.endswith(b"\n") and skip(line):
                seen = True
                yield start, None, line
                continue
            try:
                rec = decode(line)
            except msgspec.ValidationError as e:  # first: it is a subclass of DecodeError
                raise TraceInputError(f"{path}:{lineno}: {_field_error(e)} (expected {what})") from None
            except msgspec.DecodeError as e:
                if not line.strip():
                    continue
                if not line.endswith(b"\n"):
                    log.warning("%s:%d: skipping torn last line (an interrupted write)", path, lineno)
                    break
                raise TraceInputError(f"{path}:{lineno}: not valid JSON ({e}) (expected {what})") from None
            if rec.schema_version != SCHEMA_VERSION:
                raise TraceInputError(f"{path}:{lineno}: schema_version {rec.schema_version}, "
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
                return _TEXT.decode(chunk[: end if end != -1 else len(chunk)]).text
            size *= 2

    def close(self) -> None:
        os.close(self._fd)


# ---- our records --------------------------------------------------------------------------------------------
def _kept_reflections(path: Path, stats: Counter, screen: TextScreen) -> dict[str, list[int]]:
    """sample id -> flat [index, offset, truth, index, offset, truth, ...] of its usable kept reflections."""
    out: dict[str, list[int]] = {}
    what = "Reflection records (the reflection stage's reflections.jsonl)"
    not_kept = kept = differs = 0  # plain ints: this loop runs 2.5M times at the published scale
    for offset, r, _ in _scan(path, _REFLECTION, what, skip=_not_kept):
        if r is None or not r.kept:
            not_kept += 1
            continue
        kept += 1
        if r.verdict is None or r.verdict != r.truth:
            differs += 1
            continue
        refused = screen.refusal(screen.clean(r.text))
        if refused is not None:
            stats[refused] += 1  # tag_in_text | special_token
            continue
        refl = out.get(r.sample_id)
        if refl is None:
            out[r.sample_id] = [r.index, offset, r.truth]
        else:
            refl += (r.index, offset, r.truth)
    _add(stats, total=not_kept + kept, not_kept=not_kept, kept=kept, verdict_differs_from_truth=differs)
    return out


def _add(stats: Counter, **counts: int) -> None:
    """Add the non-zero counts (a reason that never occurred stays out of the summary)."""
    stats.update({k: v for k, v in counts.items() if v})


def load_records(samples: str | Path, reflections: str | Path, screen: TextScreen = CHAT_SCREEN) -> Corpus:
    """Read our sampling/reflection outputs into per-question pools (see the module docstring)."""
    samples, reflections = Path(samples), Path(reflections)
    rstats: Counter = Counter()
    astats: Counter = Counter()
    kept = _kept_reflections(reflections, rstats, screen)

    questions: dict[str, Question] = {}
    attempts: dict[str, list[Attempt]] = {}
    seen: dict[str, set[tuple[str, int]]] = {}
    what = "Sample records (the sampling stage's samples.jsonl)"
    for offset, s, line in _scan(samples, _SAMPLE, what):
        qid = s.question.id
        if qid not in questions:
            questions[qid] = _question(samples, line, qid, what)
            attempts[qid], seen[qid] = [], set()
        key = (s.variant, s.index)
        if key in seen[qid]:
            astats["duplicate"] += 1
            continue
        seen[qid].add(key)
        astats["total"] += 1
        refl = kept.pop(sample_id(qid, s.variant, s.index), None)
        reason = unusable_reason(s.text, s.correct, s.extracted, s.finish_reason == "skipped", screen)
        idx: list[int] = []
        refs: list[int] = []
        for i in range(0, len(refl) if refl else 0, 3):
            if refl[i + 2] != s.correct:
                rstats["truth_differs_from_sample"] += 1
            elif refl[i] in idx:
                rstats["duplicate"] += 1
            else:
                idx.append(refl[i])
                refs.append(refl[i + 1])
        if not count_attempt(astats, rstats, reason, len(idx)):
            continue
        if len(idx) > 1:
            order = sorted(range(len(idx)), key=idx.__getitem__)
            idx, refs = [idx[k] for k in order], [refs[k] for k in order]
        attempts[qid].append(Attempt(qid, sys.intern(s.variant), s.index, s.correct, s.extracted, offset,
                                     tuple(idx), tuple(refs)))
    rstats["without_sample"] += sum(len(v) // 3 for v in kept.values())  # always listed, even when 0
    del kept, seen

    tasks: dict[str, Any] = {}
    units = [_unit(questions[qid], attempts.pop(qid), tasks) for qid in sorted(questions)]
    s_texts, r_texts = _LineTexts(samples), _LineTexts(reflections)

    def close() -> None:
        s_texts.close()
        r_texts.close()

    def sample_text(offset: int) -> str:
        return screen.clean(s_texts(offset))

    def reflection_text(offset: int) -> str:
        return screen.clean(r_texts(offset))

    return Corpus(units, sample_text, reflection_text, astats, rstats, close)


def _question(path: Path, line: bytes, qid: str, what: str) -> Question:
    """The full question of a sample line, validated by its record type (once per question, so pydantic's
    cost does not matter here)."""
    try:
        return Sample.model_validate_json(line).question
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise TraceInputError(f"{path}: sample {qid}: field '{loc}': {first['msg']} ({what})") from None


def _unit(q: Question, attempts: list[Attempt], tasks: dict[str, Any]) -> Unit:
    """The user turn is the question in the ``original`` prompt; the task also verifies the final answer."""
    from skillfactory.tasks import task_for

    key = json.dumps([q.task, q.params], sort_keys=True, default=str)
    task = tasks.get(key)
    if task is None:
        task = tasks[key] = task_for(q)

    verdicts: dict[str, bool] = {}  # the *C_full traces of a question mostly end on the same answer

    def check(final: str, _q: Question = q, _task: Any = task) -> bool:
        ok = verdicts.get(final)
        if ok is None:
            ok = verdicts[final] = _task.check(_q, f"<answer>{final}</answer>").correct
        return ok

    return Unit(q.id, task.prompt(q, "original"), Pool(q.id, attempts), check)
