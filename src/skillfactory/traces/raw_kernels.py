"""Arrow column kernels of the raw-layout reader (``raw.py``): list columns' first elements, flattened
reflections, and ``prompting.parse_verdict`` in RE2 over a whole column.

Why apart: these are pure functions of Arrow arrays (numpy/pyarrow only, imported inside each), each equal to a
Python rule of the row-by-row reader on the inputs it accepts; ``raw.py`` keeps the reading and assembling.
"""

from __future__ import annotations

from typing import Any

from skillfactory.prompting import parse_verdict
from skillfactory.traces.arrow_arrays import filled, ints, strings, values

# parse_verdict in RE2, each ASCII letter a class of its two cases (not RE2's IGNORECASE, which folds
# Unicode as Python does not; nor a lowered copy of every text, a third of the verdict time): equal to it on
# texts without a PYTHON_ONLY character, where Python's \s is ASCII whitespace plus \x1c-\x1f and IGNORECASE
# folds only ASCII onto the letters of the tags.
WS = r"[\t\n\x0b\x0c\r\x1c-\x1f ]*"


def ascii_cases(literal: str) -> str:
    """``literal`` (letters and RE2-inert ASCII) as a pattern matching it in any ASCII case: ``ab<`` -> ``[aA][bB]<``."""
    return "".join(f"[{ch}{ch.upper()}]" if ch.isascii() and ch.isalpha() else ch for ch in literal.lower())


_OPEN, _CLOSE = ascii_cases("<verdict>"), ascii_cases("</verdict>")
_YES = f"{_OPEN}{WS}{ascii_cases('correct')}{WS}{_CLOSE}"
_NO = f"{_OPEN}{WS}{ascii_cases('incorrect')}{WS}{_CLOSE}"
_TWO = f"(?s){_OPEN}.*{_OPEN}"  # two or more opening tags ("<verdict>" cannot overlap itself)
#: Non-ASCII characters that Python's ``re`` counts as ``\s`` or folds onto a letter of the verdict tags
#: (ı and İ onto i); tests/traces checks this list against every code point.
PYTHON_ONLY = ("\x85\xa0\u0130\u0131\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
               "\u2028\u2029\u202f\u205f\u3000")
_PYTHON_ONLY_UTF8 = "|".join("".join(f"\\x{b:02x}" for b in ch.encode()) for ch in PYTHON_ONLY)  # on bytes
ALNUM = "[0-9A-Za-z]"


def is_str(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t)


def is_list(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t)


def match(arr: Any, pattern: str, null: bool = False) -> Any:
    """Numpy booleans: does each text hold a match of the RE2 ``pattern`` (``null`` for a null text)?"""
    import numpy as np
    import pyarrow.compute as pc

    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    return filled(pc.match_substring_regex(arr, pattern), null)


def list_ranges(arr: Any) -> tuple[Any, Any]:
    """(start, length) in ``arr.values`` of each list; a null list has length 0."""
    import numpy as np

    offsets = values(arr.offsets).astype(np.int64)
    lengths = np.diff(offsets)
    if arr.null_count:
        lengths[~values(arr.is_valid())] = 0
    return offsets[:-1], lengths


def firsts(arr: Any) -> Any:
    """The first element of each list (null for an empty or null list) of a list<string> column; a string
    column as it is; None for other types (the row reader takes them)."""
    import pyarrow as pa

    if is_str(arr.type):
        return arr
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.string())
    if not (is_list(arr.type) and is_str(arr.type.value_type)):
        return None
    starts, lengths = list_ranges(arr)
    return arr.values.take(ints(starts, mask=lengths == 0))


def first_bools(arr: Any) -> Any:
    """Numpy booleans of a (list of) bool or 0/1 integer column, or None (the row reader raises or takes it)."""
    import pyarrow as pa

    if is_list(arr.type):
        starts, lengths = list_ranges(arr)
        arr = arr.values.take(ints(starts, mask=lengths == 0))
    if arr.null_count:
        return None
    if pa.types.is_boolean(arr.type):
        return values(arr)
    if pa.types.is_integer(arr.type):
        numbers = values(arr)
        return numbers.astype(bool) if ((numbers == 0) | (numbers == 1)).all() else None
    return None


def flat_reflections(arr: Any) -> tuple[Any, Any, Any] | None:
    """(texts, row of each, index k in its row) of a list<string> column, or of list<list<string>> taking each
    row's first list; None for other types or a null first list (the row reader decides those)."""
    import numpy as np
    import pyarrow as pa

    n = len(arr)
    if pa.types.is_null(arr.type):
        return strings([]), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not is_list(arr.type):
        return None
    starts, lengths = list_ranges(arr)
    if is_list(arr.type.value_type) and is_str(arr.type.value_type.value_type):
        inner, has = arr.values, lengths > 0
        first = starts[has]  # each non-empty row's first list, as an index into the inner lists
        if not values(inner.is_valid())[first].all():
            return None
        inner_starts, inner_lengths = list_ranges(inner)
        starts, lengths = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        starts[has], lengths[has] = inner_starts[first], inner_lengths[first]
        arr = inner
    elif not is_str(arr.type.value_type):
        return None
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths
    rows = np.repeat(np.arange(n), lengths)
    ks = np.arange(total) - np.repeat(before, lengths)
    if n and (starts[1:] == starts[:-1] + lengths[:-1]).all():  # contiguous, as written: no copy
        return arr.values.slice(int(starts[0]), total), rows, ks
    return arr.values.take(ints(np.repeat(starts - before, lengths) + np.arange(total))), rows, ks


def verdicts(texts: Any) -> Any:
    """``parse_verdict`` of each text as int8: 1 Correct, 0 Incorrect, -1 none (or a null text)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    out = np.full(len(texts), -1, dtype=np.int8)
    if len(texts) == 0:
        return out
    # exactly one "<verdict>" (case aside), and what follows it opens with "\s*(in)correct\s*</verdict>": with
    # one opening tag, a match of "<verdict>\s*correct\s*</verdict>" anywhere starts at it. Three scans in RE2,
    # no copies (splitting each text at the tag cost 2x the time, and its lists as much memory as the texts)
    one = ~match(texts, _TWO)
    out[match(texts, _YES) & one] = 1
    out[match(texts, _NO) & one] = 0
    odd = np.flatnonzero(~filled(pc.string_is_ascii(texts), True))
    if len(odd):  # only a non-ASCII text can hold a character that Python's re treats otherwise
        nonascii = texts.take(ints(odd))
        raw = nonascii.view(pa.large_binary() if pa.types.is_large_string(texts.type) else pa.binary())
        look = odd[match(raw, _PYTHON_ONLY_UTF8)]
        for j, text in zip(look.tolist(), texts.take(ints(look)).to_pylist()):
            verdict = parse_verdict(text)
            out[j] = -1 if verdict is None else int(verdict)
    return out


def compiles(pattern: str) -> str:
    """``pattern``, or "" (every text flagged, so judged in Python) if RE2 cannot take it (too large)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        pc.match_substring_regex(strings([""]), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return ""
    return pattern


def re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern matching it literally."""
    return "".join(f"\\x{{{ord(ch):x}}}" if ord(ch) < 32 or ord(ch) == 127
                   else "\\" + ch if ord(ch) < 128 and not (ch.isalnum() or ch == "_") else ch for ch in text)
