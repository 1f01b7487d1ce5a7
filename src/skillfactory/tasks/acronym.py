"""Acronym: pick words from a list, in order, so that their first letters spell an English word.

Definition (exact): the question gives a list of words and a length L. An answer is correct iff it is a
single word that

1. is in the verification word list (:func:`skillfactory.tasks.words.valid_words`),
2. has at least L letters, and
3. is spelled by the first letters of some of the given words taken in the given order (a subsequence of the
   string of initials; each word contributes at most one letter).

Solvable by construction: the generator picks a gold word of exactly L letters from the common word list,
one common word starting with each of its letters, and inserts ``extra`` distractor words at random places.
Any other valid word also counts. Harder = larger L (and more distractors).

Verification reasons: ok, no_answer, too_long, unparseable (not a single alphabetic word), too_short,
not_from_initials, not_a_word.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from skillfactory.records import Question
from skillfactory.tasks.base import CheckResult, Task, TaskParams
from skillfactory.tasks.words import check_word, common_words_by_initial, common_words_of_length

_CLUE_LEN = (3, 9)  # length range of the listed words


def is_subsequence(word: str, letters: str) -> bool:
    it = iter(letters)
    return all(c in it for c in word)


class AcronymParams(TaskParams):
    """Knobs: the acronym length L (harder = longer) and the number of distractor words."""

    length: int = Field(4, ge=3, le=10, description="the answer needs at least this many letters")
    extra: int = Field(2, ge=0, le=10, description="distractor words inserted among the clue words")


class AcronymFields(BaseModel):
    words: list[str] = Field(min_length=1, max_length=40)
    min_length: int = Field(ge=1)


class Acronym(Task):
    """Spell a word of at least ``length`` letters with initials of ``length + extra`` given words."""

    name: ClassVar[str] = "acronym"
    Params: ClassVar[type[TaskParams]] = AcronymParams
    Fields: ClassVar[type[BaseModel]] = AcronymFields
    params: AcronymParams

    def make_question(self, rng: random.Random) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
        p = self.params
        by_initial = common_words_by_initial(*_CLUE_LEN)
        gold = rng.choice(common_words_of_length(p.length, p.length))
        if any(c not in by_initial for c in gold):
            return None
        words = [rng.choice(by_initial[c]) for c in gold]
        initials = sorted(by_initial)
        for _ in range(p.extra):
            words.insert(rng.randint(0, len(words)), rng.choice(by_initial[rng.choice(initials)]))
        if len(set(words)) < len(words):  # a repeated word reads as a typo; draw again
            return None
        return {"words": words, "min_length": p.length}, gold, {}

    def canonical_key(self, fields: dict[str, Any]) -> str:
        return f"{' '.join(fields['words'])}/{fields['min_length']}"

    def statement(self, question: Question) -> str:
        f = question.fields
        return (
            f"Here is a list of words: {', '.join(f['words'])}. Choose some of these words, keeping their order, "
            f"so that their first letters spell an English word of at least {f['min_length']} letters. "
            "The word must be a dictionary headword (plurals and other inflected forms do not count). "
            "Give the spelled word only."
        )

    def check_answer(self, question: Question, answer: str) -> CheckResult:
        initials = "".join(str(w)[:1].lower() for w in question.fields["words"])

        def spelled_by_initials(word: str) -> CheckResult | None:
            if is_subsequence(word, initials):
                return None
            return CheckResult.wrong("not_from_initials", f"{word!r} is not spelled by initials in order ({initials})")

        return check_word(answer, int(question.fields["min_length"]), spelled_by_initials)


__all__ = ["Acronym", "AcronymFields", "AcronymParams", "is_subsequence"]
