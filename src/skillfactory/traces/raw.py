"""Input in the layout of the data released with the paper (a local parquet or JSONL file).

One row per attempt: the question, its gold answer, the prompt variant, and list-valued columns of which the
first element is used (response, correctness, extracted answer), plus the list of reflection strings on that
response. Rows are grouped into questions by the question text (and gold answer). There is no task object
here: correctness comes from the columns, a reflection is kept when its verdict equals it, and the user turn is
the ``question`` column as written. Texts are screened like ours (sources.py, clean.py).

Column names can be overridden (:class:`RawColumns`), e.g. ``columns={"response": "completions"}``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from skillfactory.prompting import parse_verdict
from skillfactory.traces.formats import Attempt, Pool
from skillfactory.traces.clean import CHAT_SCREEN, TextScreen
from skillfactory.traces.sources import Corpus, TraceInputError, Unit, unusable_reason

#: Rows read per parquet batch (bounds memory on large files).
BATCH_ROWS = 4096


class RawColumns(BaseModel):
    """Column names of the published raw layout; override any of them for a file that names them otherwise."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = "question"
    answer: str = "answer"
    prompt_variant: str = "prompt_variant"
    response: str = "model_responses__mutated_prompts"
    correct: str = "model_responses__mutated_prompts__eval_is_correct"
    extracted: str = "model_responses__mutated_prompts__eval_extracted_answers"
    reflections: str = "model_responses__mutated_prompts_reflection"
    question_id: str | None = None  # optional column with a question id; else one is hashed from question+answer


def _rows(path: Path, names: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, row) for each row, ``where`` = "row N" (parquet) or "line N" (JSONL); checks columns exist."""
    if not path.exists():
        raise TraceInputError(f"{path}: file not found (expected a raw parquet or JSONL file)")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # pyarrow raises several types for a bad file
            raise TraceInputError(f"{path}: not a readable parquet file ({e})") from None
        present = set(pf.schema_arrow.names)
        missing = [n for n in names if n not in present]
        if missing:
            raise TraceInputError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(sorted(present))}); "
                                  "set columns.<field> to the name your file uses")
        i = 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=names):
            for row in batch.to_pylist():
                yield f"row {i}", row
                i += 1
        return
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise TraceInputError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise TraceInputError(f"{path}:{lineno}: expected a JSON object per line")
            for n in names:
                if n not in row:
                    raise TraceInputError(f"{path}:{lineno}: missing column {n!r} (keys: {', '.join(sorted(row))}); "
                                          "set columns.<field> to the name your file uses")
            yield f"line {lineno}", row


def _first(value: Any) -> Any:
    """The first element of a list-valued cell (a scalar is taken as is; an empty list gives None)."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    if hasattr(value, "tolist"):  # numpy arrays from some writers
        return _first(value.tolist())
    return value


def _bad(path: Path, where: str, col: str, expected: str, got: Any) -> TraceInputError:
    return TraceInputError(f"{path}: {where}: column {col!r}: expected {expected}, got {type(got).__name__} {got!r:.60}")


def load_raw(path: str | Path, columns: RawColumns | None = None, screen: TextScreen = CHAT_SCREEN) -> Corpus:
    """Read a raw-layout file into per-question pools (see the module docstring)."""
    path, c = Path(path), columns or RawColumns()
    names = [c.question, c.answer, c.prompt_variant, c.response, c.correct, c.extracted, c.reflections]
    if c.question_id:
        names.append(c.question_id)
    texts: list[str] = []
    prompts: dict[str, str] = {}
    attempts: dict[str, list[Attempt]] = {}
    counters: dict[tuple[str, str], int] = {}
    astats: Counter = Counter()
    rstats: Counter = Counter()
    n_rows = 0
    for where, row in _rows(path, names):
        n_rows += 1
        question = row[c.question]
        if not isinstance(question, str) or not question.strip():
            raise _bad(path, where, c.question, "a non-empty string", question)
        variant = row[c.prompt_variant]
        if not isinstance(variant, str):
            raise _bad(path, where, c.prompt_variant, "a string", variant)
        if c.question_id:
            qid = str(row[c.question_id])
        else:
            key = json.dumps([question, row[c.answer]], ensure_ascii=False, default=str)
            qid = "raw/" + hashlib.sha256(key.encode()).hexdigest()[:16]
        if qid not in prompts:
            prompts[qid], attempts[qid] = question, []
        index = counters.get((qid, variant), 0)
        counters[(qid, variant)] = index + 1

        response = _first(row[c.response])
        if response is not None and not isinstance(response, str):
            raise _bad(path, where, c.response, "a list of strings", row[c.response])
        correct = _first(row[c.correct])
        if isinstance(correct, int) and correct in (0, 1):
            correct = bool(correct)
        if not isinstance(correct, bool):
            raise _bad(path, where, c.correct, "a list of booleans", row[c.correct])
        answer = _first(row[c.extracted])
        if answer is not None and not isinstance(answer, str):
            answer = str(answer)
        refls = row[c.reflections]
        if hasattr(refls, "tolist"):
            refls = refls.tolist()
        if refls and isinstance(refls[0], (list, tuple)):  # one list per response: take the first response's
            refls = refls[0]
        if refls is not None and not (isinstance(refls, (list, tuple)) and all(isinstance(r, str) or r is None
                                                                              for r in refls)):
            raise _bad(path, where, c.reflections, "a list of strings", refls)

        astats["total"] += 1
        reason = unusable_reason(response or "", correct, answer, screen=screen)
        idx, refs = [], []
        for k, text in enumerate(refls or []):
            rstats["total"] += 1
            if text is None or parse_verdict(text) != correct:
                rstats["not_kept"] += 1
                continue
            rstats["kept"] += 1
            text = screen.clean(text)
            refused = screen.refusal(text)
            if refused is not None:
                rstats[refused] += 1  # tag_in_text | special_token
                continue
            idx.append(k)
            refs.append(len(texts))
            texts.append(text)
        if reason is None and not idx:
            reason = "no_kept_reflection"
        if reason is not None:
            astats[f"unusable:{reason}"] += 1
            continue
        astats["usable"] += 1
        rstats["usable"] += len(idx)
        text_ref = len(texts)
        texts.append(screen.clean(response or ""))
        attempts[qid].append(Attempt(qid, sys.intern(variant), index, correct, answer, text_ref,
                                     tuple(idx), tuple(refs)))
    if n_rows == 0:
        raise TraceInputError(f"{path}: no rows (expected one row per question and prompt variant)")
    units = [Unit(qid, prompts[qid], Pool(qid, attempts[qid])) for qid in sorted(prompts)]
    return Corpus(units, texts.__getitem__, texts.__getitem__, astats, rstats)
