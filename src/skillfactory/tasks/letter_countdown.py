"""Letter countdown: make an English word of at least L letters from a given bag of letters.

Definition (exact): the question gives a list of letters (a multiset, shuffled) and a length L. An answer is
correct iff it is a single word that

1. is in the verification word list (:func:`skillfactory.tasks.words.valid_words`),
2. has at least L letters, and
3. uses only the given letters, each at most as many times as it appears in the list.

Solvable by construction: the generator picks a word of exactly L letters from the common word list, adds
``extra`` distractor letters (drawn from letters of other common words, so their frequencies look like
English), and shuffles. That word is the gold; any other valid word also counts. Harder = larger L (and more
distractors).

Verification reasons: ok, no_answer, too_long, unparseable (not a single alphabetic word), too_short,
wrong_letters (a letter not given, or used more often than given), not_a_word.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from skillfactory.records import Question
from skillfactory.tasks.base import CheckResult, Task, TaskParams
from skillfactory.tasks.words import check_word, common_words, common_words_of_length


class LetterCountdownParams(TaskParams):
    """Knobs: the word length L (harder = longer) and the number of distractor letters."""

    length: int = Field(5, ge=3, le=12, description="the answer needs at least this many letters")
    extra: int = Field(3, ge=0, le=12, description="distractor letters added to the gold word's letters")


class LetterCountdownFields(BaseModel):
    letters: list[str] = Field(min_length=1, max_length=40)
    min_length: int = Field(ge=1)


class LetterCountdown(Task):
    """Form a word of at least ``length`` letters from ``length + extra`` given letters."""

    name: ClassVar[str] = "letter_countdown"
    Params: ClassVar[type[TaskParams]] = LetterCountdownParams
    Fields: ClassVar[type[BaseModel]] = LetterCountdownFields
    params: LetterCountdownParams

    def make_question(self, rng: random.Random) -> tuple[dict[str, Any], str, dict[str, Any]]:
        p = self.params
        gold = rng.choice(common_words_of_length(p.length, p.length))
        pool = common_words()
        letters = list(gold) + [rng.choice(rng.choice(pool)) for _ in range(p.extra)]
        rng.shuffle(letters)
        return {"letters": letters, "min_length": p.length}, gold, {}

    def canonical_key(self, fields: dict[str, Any]) -> str:
        return f"{''.join(sorted(fields['letters']))}/{fields['min_length']}"

    def statement(self, question: Question) -> str:
        f = question.fields
        return (
            f"Using only the letters [{', '.join(f['letters'])}], form an English word of at least "
            f"{f['min_length']} letters. Each letter can be used at most as many times as it appears in the list. "
            "The word must be a dictionary headword (plurals and other inflected forms do not count). "
            "Give the word only."
        )

    def check_answer(self, question: Question, answer: str) -> CheckResult:
        given = Counter(str(c).lower() for c in question.fields["letters"])

        def uses_given_letters(word: str) -> CheckResult | None:
            over = Counter(word) - given
            if not over:
                return None
            return CheckResult.wrong("wrong_letters", f"letters not available: {''.join(sorted(over.elements()))}")

        return check_word(answer, int(question.fields["min_length"]), uses_given_letters)


__all__ = ["LetterCountdown", "LetterCountdownFields", "LetterCountdownParams"]
