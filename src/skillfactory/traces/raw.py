"""Input in the layout of the data released with the paper (a local parquet or JSONL file).

One row per attempt: the question, its gold answer, the prompt variant, and list-valued columns of which the
first element is used (response, correctness, extracted answer), plus the list of reflection strings on that
response. Rows are grouped into questions by the question text (and gold answer). There is no task object
here: correctness comes from the columns, a reflection is kept when its verdict equals it, and the user turn is
the ``question`` column as written. Texts are screened like ours (sources.py, clean.py).

Column names can be overridden (:class:`RawColumns`), e.g. ``columns={"response": "completions"}``.

Why columns, not rows: a released file holds about half a million rows and two million reflections. Read as
one Python dict per row, with every verdict parsed by Python's ``re``, that was most of a build. Here rows are
read in batches of Arrow columns (raw_batches.py: pyarrow for parquet; msgspec, which skips unused fields,
for JSONL) in a thread of their own, the next batches screened in threads while this one is assembled (Arrow's
kernels release the GIL): verdicts and the text screen run on whole columns in RE2, the usable texts are
copied into the store there too, ids and per-variant indexes in numpy, and Python touches only the texts that
can go into a trace. What is kept for the build (the texts in a few large regions, the usable attempts as
columns, a question's pool made when its traces are built) is in raw_store.py. What the
kernels cannot judge exactly like Python (a text with a tag or thinking block to clean, or no ASCII letter; a
reflection with Unicode that Python's case-insensitive ``re`` folds onto ASCII, ``raw_kernels.PYTHON_ONLY``)
goes through the same Python functions as before.
A batch of other column types, or holding a value that is an error, goes to the row-by-row reader, which also
writes every error message. Both give the same pools and counts; tests hold the builds to recorded bytes.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from pydantic import BaseModel, ConfigDict

from skillfactory.prompting import parse_verdict
from skillfactory.traces.arrow_arrays import bools, int_values, ints, strings, values
from skillfactory.traces.clean import CHAT_SCREEN, TextScreen
from skillfactory.traces.formats import STRUCTURE_TAGS
from skillfactory.traces.raw_batches import Batch, Prefetched, ahead, jsonl_batches, parquet_batches
from skillfactory.traces.raw_kernels import (
    ALNUM, compiles, first_bools, firsts, flat_reflections, is_str, match, re2_literal, verdicts,
)
from skillfactory.traces.raw_store import AttemptColumns, RawUnit, Texts
from skillfactory.traces.sources import Corpus, TraceInputError, count_attempt, unusable_reason

_JSON = msgspec.json.Encoder().encode

#: Rows read per batch (bounds memory on large files). Each batch costs ~50 Arrow/numpy calls and a hand-over
#: between threads: at the published scale (480k rows) 16,384 rows read in 3.4-4.0 s vs 3.6-4.1 s for 4,096 (build
#: 11.5-12.0 s vs 11.8-12.6 s, four runs each, interleaved), for ~0.25 GB more peak memory.
BATCH_ROWS = 16384



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

    def names(self) -> list[str]:
        names = [self.question, self.answer, self.prompt_variant, self.response, self.correct, self.extracted,
                 self.reflections]
        return list(dict.fromkeys(names + [self.question_id] if self.question_id else names))


def load_raw(path: str | Path, columns: RawColumns | None = None, screen: TextScreen = CHAT_SCREEN) -> Corpus:
    """Read a raw-layout file into per-question pools (see the module docstring)."""
    path, c = Path(path), columns or RawColumns()
    if not path.exists():
        raise TraceInputError(f"{path}: file not found (expected a raw parquet or JSONL file)")
    if path.suffix.lower() == ".parquet":
        batches: Any = Prefetched(parquet_batches(path, c, BATCH_ROWS))  # decoding starts now
    else:  # msgspec decodes holding the GIL: a thread of its own would only take turns with this one
        batches = jsonl_batches(path, c, BATCH_ROWS)
    try:
        reader = _Reader(path, c, screen)
        collect = gc.isenabled()
        gc.disable()  # ~10^6 long-lived objects arrive: each full collection would walk them all again
        try:
            for batch, screened in ahead(batches, reader.columnar):
                reader.assemble(screened if screened is not None else reader.row_by_row(batch.rows()))
            if reader.n_rows == 0:
                raise TraceInputError(f"{path}: no rows (expected one row per question and prompt variant)")
            return reader.corpus()
        finally:
            if collect:
                gc.enable()
    finally:
        batches.close()  # on an error: stops the thread taking them


# ---- one batch, screened ----------------------------------------------------------------------------------------
@dataclass
class _Screened:
    """A batch as the ordered pass needs it: every row's question, variant and id key (Arrow arrays, or lists
    for ``keys``), then per usable row (positions in ``usable``) what its Attempt holds."""

    question: Any
    variant: Any
    keys: Any  # question_id column, or the answers (hashed with the question)
    usable: Any  # numpy positions of the usable rows
    correct: list[bool]
    answers: list[str | None]
    texts: Any  # where Texts.put placed the response text of each usable row, as it goes into a trace
    n_refl: list[int]  # how many usable reflections each usable row has, flat in the next two
    refl_index: list[int]
    refl_texts: Any  # where their texts were placed
    astats: Counter  # the batch's counts, added by the ordered pass (the reading thread must not)
    rstats: Counter


class _Reader:
    """Pools being built: texts, per-question attempts, per-(question, variant) counters and the drop counts."""

    def __init__(self, path: Path, c: RawColumns, screen: TextScreen):
        self.path, self.c, self.screen = path, c, screen
        self.texts = Texts()
        self.qids: list[str] = []  # question number -> id
        self.prompts: list[str] = []
        self.attempts = AttemptColumns()
        self.variants: list[str] = []  # variant number -> name
        self.counters: dict[int, int] = {}  # question number << 24 | variant number -> rows so far
        self.astats: Counter = Counter()
        self.rstats: Counter = Counter()
        self.n_rows = 0
        self._qnum: dict[str, int] = {}
        self._vnum: dict[str, int] = {}
        self._hashed: dict[tuple[str, Any], str] = {}
        # Texts with none of these need no Python look (clean() is the identity, refusal() None). An exact
        # TextScreen only: a subclass may clean otherwise, so all its texts go through its own methods.
        literals = (*STRUCTURE_TAGS, *screen.special_tokens) if type(screen) is TextScreen else ()
        self._flagged = compiles("|".join(map(re2_literal, literals))) if literals else ""

    def corpus(self) -> Corpus:
        order = sorted(range(len(self.qids)), key=self.qids.__getitem__)
        table = self.attempts.done(self.qids, self.variants)
        units = [RawUnit(self.qids[q], self.prompts[q], table, q) for q in order]
        text, close = self.texts.done()
        return Corpus(units, text, text, self.astats, self.rstats, close)

    # -- the ordered pass: ids, per-(question, variant) indexes in file order, attempts --
    def assemble(self, s: _Screened) -> None:
        import numpy as np
        import pyarrow.compute as pc

        n = len(s.question)
        self.n_rows += n
        self.astats.update(s.astats)
        self.rstats.update(s.rstats)
        before = len(self.qids)
        q = self._question_numbers(s)
        enc = pc.dictionary_encode(s.variant)
        v = np.asarray(_numbers(enc.dictionary.to_pylist(), self._vnum, self.variants, sys.intern),
                       dtype=np.int64)[values(enc.indices)]
        if len(self.variants) >= 1 << 24:
            raise TraceInputError(f"{self.path}: more than {1 << 24} prompt variants")
        key = q << 24 | v
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        counts = np.diff(np.r_[starts, n])
        base = []
        for k, cnt in zip(sorted_key[starts].tolist(), counts.tolist()):
            seen = self.counters.get(k, 0)
            base.append(seen)
            self.counters[k] = seen + cnt
        index = np.empty(n, dtype=np.int64)
        index[order] = np.repeat(np.asarray(base, dtype=np.int64), counts) + np.arange(n) - np.repeat(starts, counts)

        new, first = np.unique(q, return_index=True)  # the prompt of a question: its first row's question
        self.prompts += s.question.take(ints(first[new >= before])).to_pylist()

        u = s.usable
        refs = self.texts.add(s.texts)
        refl0 = self.texts.add(s.refl_texts)
        self.attempts.add(q[u], v[u], index[u], s.correct, s.answers, refs, refl0, s.n_refl, s.refl_index)

    def _question_numbers(self, s: _Screened) -> Any:
        """Each row's question number (new ids numbered as they first appear)."""
        import numpy as np
        import pyarrow.compute as pc

        keys = s.keys
        arrow = not isinstance(keys, list)
        if self.c.question_id:
            if arrow and is_str(keys.type) and not keys.null_count:  # str() of a str: the ids as they are
                enc = pc.dictionary_encode(keys)
                names = _numbers(enc.dictionary.to_pylist(), self._qnum, self.qids)
                return np.asarray(names, dtype=np.int64)[values(enc.indices)]
            return np.asarray(_numbers([str(k) for k in (keys.to_pylist() if arrow else keys)], self._qnum,
                                       self.qids), dtype=np.int64)
        if arrow and is_str(keys.type):  # hash each distinct (question, answer) once
            qenc, aenc = pc.dictionary_encode(s.question), pc.dictionary_encode(keys)
            width = len(aenc.dictionary) + 1
            pair = values(qenc.indices).astype(np.int64) * width + 1 + int_values(aenc.indices, -1)
            pairs, inverse = np.unique(pair, return_inverse=True)
            questions = qenc.dictionary.take(ints(pairs // width)).to_pylist()
            answers = [None] + aenc.dictionary.to_pylist()
            ids = [self._hashed_id(qq, answers[a]) for qq, a in zip(questions, (pairs % width).tolist())]
            return np.asarray(_numbers(ids, self._qnum, self.qids), dtype=np.int64)[inverse]
        answers = keys.to_pylist() if arrow else keys
        ids = [self._hashed_id(qq, a) for qq, a in zip(s.question.to_pylist(), answers)]
        return np.asarray(_numbers(ids, self._qnum, self.qids), dtype=np.int64)

    def _hashed_id(self, question: str, answer: Any) -> str:
        if not (type(answer) in (str, int) or answer is None):  # other values: equal ones may differ in JSON
            return _hashed_id(question, answer)
        qid = self._hashed.get((question, answer))
        if qid is None:
            qid = self._hashed[(question, answer)] = _hashed_id(question, answer)
        return qid

    # -- the row reader: any input, every error message --
    def row_by_row(self, rows: list[tuple[str, dict[str, Any]]]) -> _Screened:
        import numpy as np

        c, path, screen = self.c, self.path, self.screen
        questions, variants, keys, usable, correct_u, answers_u, texts_u = [], [], [], [], [], [], []
        n_refl, refl_index, refl_texts = [], [], []
        astats, rstats = Counter(), Counter()
        for i, (where, row) in enumerate(rows):
            question = row[c.question]
            if not isinstance(question, str) or not question.strip():
                raise _bad(path, where, c.question, "a non-empty string", question)
            variant = row[c.prompt_variant]
            if not isinstance(variant, str):
                raise _bad(path, where, c.prompt_variant, "a string", variant)
            questions.append(question)
            variants.append(variant)
            keys.append(row[c.question_id] if c.question_id else row[c.answer])

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
            idx, kept = [], []
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
                kept.append(text)
            if not count_attempt(astats, rstats, reason, len(idx)):
                continue
            usable.append(i)
            correct_u.append(correct)
            answers_u.append(answer)
            texts_u.append(screen.clean(response or ""))
            n_refl.append(len(idx))
            refl_index += idx
            refl_texts += kept
        return _Screened(strings(questions), strings(variants), keys, np.asarray(usable, dtype=np.int64), correct_u,
                         answers_u, self.texts.put(strings(texts_u)), n_refl, refl_index,
                         self.texts.put(strings(refl_texts)), astats, rstats)

    # -- the columnar path: the same decisions on whole columns (run in the reading thread) --
    def columnar(self, batch: Batch) -> _Screened | None:
        """The batch screened as :meth:`row_by_row` would, or None when it has to go through that one."""
        import numpy as np

        if batch.columns is None:
            return None
        c, screen, cols = self.c, self.screen, batch.columns
        question, variant = cols[c.question], cols[c.prompt_variant]
        if not (is_str(question.type) and is_str(variant.type)) or question.null_count or variant.null_count:
            return None
        response, answer = firsts(cols[c.response]), firsts(cols[c.extracted])
        correct, refl = first_bools(cols[c.correct]), flat_reflections(cols[c.reflections])
        if response is None or answer is None or correct is None or refl is None:
            return None
        if any(not q.strip() for q in question.filter(bools(~match(question, ALNUM))).to_pylist()):
            return None  # an empty question: the row reader names it
        n = len(question)

        # reflections: kept when the verdict equals the truth, usable when the screen lets them in
        texts, rows, ks = refl
        kept = verdicts(texts) == correct[rows]
        ok, cleaned, refusals = kept.copy(), {}, Counter()
        look = np.flatnonzero(kept & match(texts, self._flagged, null=True))
        for j, text in zip(look.tolist(), texts.take(ints(look)).to_pylist()):
            text = screen.clean(text)
            refused = screen.refusal(text)
            if refused is None:
                cleaned[j] = text
            else:
                refusals[refused] += 1
                ok[j] = False
        n_ok = np.bincount(rows[ok], minlength=n)

        # responses: unusable for the same reasons, in the same order, as unusable_reason gives them
        flagged = match(response, self._flagged, null=True) | ~match(response, ALNUM)
        no_answer = correct & ~flagged & values(answer.is_null())
        reasons = Counter({"correct_without_answer": int(no_answer.sum())})
        usable = ~flagged & ~no_answer
        look = np.flatnonzero(flagged)
        looked = answer.take(ints(look)).to_pylist()
        resp_clean = {}
        for i, text, ans in zip(look.tolist(), response.take(ints(look)).to_pylist(), looked):
            reason = unusable_reason(text or "", bool(correct[i]), ans, screen=screen)
            if reason is None:  # (a usable text is a str)
                usable[i], resp_clean[i] = True, screen.clean(text)
            else:
                reasons[reason] += 1
        reasons["no_kept_reflection"] = int((usable & (n_ok == 0)).sum())
        usable &= n_ok > 0

        u = np.flatnonzero(usable)
        take = ints(u)
        chosen = np.flatnonzero(ok & usable[rows])
        resp = _replaced(response.take(take), u, resp_clean)
        refl_texts = _replaced(texts.take(ints(chosen)), chosen, cleaned)
        n_refl = n_ok[u]
        astats = _nonzero(total=n, usable=len(u), **{f"unusable:{r}": k for r, k in reasons.items()})
        rstats = _nonzero(total=len(texts), kept=int(kept.sum()), not_kept=int((~kept).sum()),
                          usable=int(n_refl.sum()), **refusals)
        return _Screened(question, variant, cols[c.question_id] if c.question_id else cols[c.answer], u,
                         correct[u].tolist(), answer.take(take).to_pylist(), self.texts.put(resp), n_refl.tolist(),
                         ks[chosen].tolist(), self.texts.put(refl_texts), astats, rstats)


def _replaced(texts: Any, positions: Any, new: dict[int, str]) -> Any:
    """``texts`` (at ``positions`` of the batch) with the cleaned texts of ``new`` (by batch position) put in."""
    import numpy as np

    at = np.searchsorted(positions, list(new))
    hit = [(m, j) for m, j in zip(at.tolist(), new) if m < len(positions) and positions[m] == j]
    if not hit:
        return texts
    replaced = texts.to_pylist()
    for m, j in hit:
        replaced[m] = new[j]
    return strings(replaced)


def _numbers(names: list[str], numbers: dict[str, int], by_number: list[str], intern: Any = None) -> list[int]:
    """The number of each name, numbering new ones as they come (``by_number`` grows with them)."""
    out = []
    for name in names:
        num = numbers.get(name)
        if num is None:
            num = numbers[name] = len(by_number)
            by_number.append(intern(name) if intern else name)
        out.append(num)
    return out


# ---- row helpers ------------------------------------------------------------------------------------------------
def _hashed_id(question: str, answer: Any) -> str:
    """``raw/`` + the start of the sha256 of ``json.dumps([question, answer], ensure_ascii=False, default=str)``.
    For a str question and a str, int or None answer (all a columnar file holds) msgspec writes those bytes
    (the tests compare) in a quarter of the time: 30,000 questions are hashed on the reader's one thread."""
    if type(question) is str and (answer is None or type(answer) in (str, int)):
        key = b"[" + _JSON(question) + b", " + _JSON(answer) + b"]"
    else:
        key = json.dumps([question, answer], ensure_ascii=False, default=str).encode()
    return "raw/" + hashlib.sha256(key).hexdigest()[:16]


def _first(value: Any) -> Any:
    """The first element of a list-valued cell (a scalar is taken as is; an empty list gives None)."""
    if isinstance(value, (list, tuple)):
        return value[0] if value else None
    if hasattr(value, "tolist"):  # numpy arrays from some writers
        return _first(value.tolist())
    return value


def _nonzero(**counts: int) -> Counter:
    """The non-zero counts (a reason that never occurred stays out of the summary, as row by row)."""
    return Counter({k: v for k, v in counts.items() if v})


def _bad(path: Path, where: str, col: str, expected: str, got: Any) -> TraceInputError:
    return TraceInputError(f"{path}: {where}: column {col!r}: expected {expected}, got {type(got).__name__} {got!r:.60}")
