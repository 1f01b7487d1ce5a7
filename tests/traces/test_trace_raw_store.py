"""The raw reader's store: attempts added batch by batch come back as each question's pool, in its order
(variant name, then index within the variant, counted in file order)."""

from __future__ import annotations

import numpy as np

from skillfactory.traces.formats import Attempt
from skillfactory.traces.raw_store import AttemptColumns, RawUnit


def test_pools_are_the_attempts_of_each_question_across_batches():
    store = AttemptColumns()
    # batch 1: question 1 (variant 0, index 0) with 2 reflections, question 0 (variant 1, index 0) with 1;
    # texts: responses at refs 10-11, reflections at 20-22
    store.add(np.array([1, 0]), np.array([0, 1]), np.array([0, 0]), [True, False], ["4", None], 10, 20, [2, 1],
              [0, 3, 1])
    # batch 2: question 1 again (variant 0, index 1) with 1 reflection; responses at 30, reflections at 40
    store.add(np.array([1]), np.array([0]), np.array([1]), [False], ["5"], 30, 40, [1], [2])
    table = store.done(["q-a", "q-b"], ["original", "rephrase"])
    assert RawUnit("q-a", "prompt a", table, 0).pool.attempts == [
        Attempt("q-a", "rephrase", 0, False, None, 11, (1,), (22,))]
    unit = RawUnit("q-b", "prompt b", table, 1)
    assert unit.pool.attempts == [Attempt("q-b", "original", 0, True, "4", 10, (0, 3), (20, 21)),
                                  Attempt("q-b", "original", 1, False, "5", 30, (2,), (40,))]
    assert unit.pool.correct == unit.pool.attempts[:1] and unit.check is None and unit.prompt == "prompt b"


def test_a_file_without_usable_attempts_gives_empty_pools():
    table = AttemptColumns().done(["q"], ["original"])
    assert RawUnit("q", "p", table, 0).pool.attempts == []
