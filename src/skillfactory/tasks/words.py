"""The English word lists behind the word tasks (letter_countdown, acronym).

Source: the ``english-words`` PyPI package (maintained, MIT, no network access at run time: the lists ship
inside the wheel as pickles). It bundles two independent dictionaries:

* ``web2`` - Webster's Second International (the classic Unix ``/usr/share/dict/web2``, ~236k entries);
* ``gcide`` - the GNU Collaborative International Dictionary of English (~115k headwords).

Two lists are derived, both sorted, so everything built on them is deterministic:

* :func:`valid_words` - what a verifier accepts: every all-lowercase, purely alphabetic web2 entry
  (capitalized entries are proper nouns; ~211k words). Lenient on purpose: a rare but real word is right.
* :func:`common_words` - what generators draw puzzles from: the valid words that GCIDE also lists (~80k).
  Being attested by two dictionaries filters out most of web2's archaic and technical entries, so gold
  answers look like words a model may know. ``common_words`` is a subset of ``valid_words``, so every gold
  answer verifies.

Both dictionaries list headwords: regular plurals and verb forms are mostly absent ("cats", "walked",
"houses" are not words here, while "dogs" or "ranged" happen to be). The word tasks therefore ask for a
dictionary headword, and say so in their statements; guessing inflections would accept non-words
("quicklys") and make the verifier exploitable.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from skillfactory.tasks.base import CheckResult

_ALPHA = re.compile(r"[a-z]+")


@lru_cache(maxsize=1)
def valid_words() -> frozenset[str]:
    """All accepted words (lowercase a-z)."""
    from english_words import get_english_words_set

    return frozenset(w for w in get_english_words_set(["web2"], lower=False) if _ALPHA.fullmatch(w))


@lru_cache(maxsize=1)
def common_words() -> tuple[str, ...]:
    """Words used to build questions, sorted; a subset of :func:`valid_words`."""
    from english_words import get_english_words_set

    gcide = get_english_words_set(["gcide"], lower=True)
    return tuple(sorted(w for w in valid_words() if w in gcide))


@lru_cache(maxsize=64)
def common_words_of_length(lo: int, hi: int) -> tuple[str, ...]:
    """Common words with ``lo <= len(word) <= hi``, sorted."""
    return tuple(w for w in common_words() if lo <= len(w) <= hi)


@lru_cache(maxsize=32)
def common_words_by_initial(lo: int, hi: int) -> dict[str, tuple[str, ...]]:
    """Common words of a length range, grouped by first letter."""
    out: dict[str, list[str]] = {}
    for w in common_words_of_length(lo, hi):
        out.setdefault(w[0], []).append(w)
    return {k: tuple(v) for k, v in out.items()}


def is_word(text: str) -> bool:
    return text in valid_words()


def normalize_word_answer(answer: str, max_len: int = 40) -> str | None:
    """The single lowercase word an answer holds (quotes, a trailing period or ! and case forgiven), or None.

    Markdown and LaTeX wrappers (``**garden**``, ``\\boxed{garden}``) are peeled by ``tasks.normalize`` for
    every task before this; only balanced ones, so ``**garden`` is not a word.
    """
    text = answer[: 4 * max_len]
    for _ in range(3):  # peel e.g. ' "Garden". ' -> Garden
        text = text.strip().strip("\"'").rstrip(".!")
    text = text.lower()
    if len(text) > max_len or not _ALPHA.fullmatch(text):
        return None
    return text


def check_word(answer: str, min_length: int, fits: Callable[[str], CheckResult | None]) -> CheckResult:
    """The verifier the word tasks share: one word of letters, at least ``min_length`` long, allowed by the task's
    own rule ``fits`` (None when it fits, else the reason it does not), and in the word list."""
    word = normalize_word_answer(answer)
    if word is None:
        return CheckResult.wrong("unparseable", "the answer must be a single word of letters a-z")
    if len(word) < min_length:
        return CheckResult.wrong("too_short", f"{word!r} has {len(word)} letters, fewer than {min_length}")
    refused = fits(word)
    if refused is not None:
        return refused
    if not is_word(word):
        return CheckResult.wrong("not_a_word", f"{word!r} is not in the word list")
    return CheckResult.ok()


__all__ = ["check_word", "common_words", "common_words_by_initial", "common_words_of_length", "is_word",
           "normalize_word_answer", "valid_words"]
