"""The raw reader's store: attempts added batch by batch come back as each question's pool, in its order
(variant name, then index within the variant, counted in file order); texts copied in from several threads
come back by the references given in file order."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest

from skillfactory.traces import raw_store
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
    # (a question's kept reflections are consecutive texts: their refs are a range)
    assert RawUnit("q-a", "prompt a", table, 0).pool.attempts == [
        Attempt("q-a", "rephrase", 0, False, None, 11, (1,), range(22, 23))]
    unit = RawUnit("q-b", "prompt b", table, 1)
    assert unit.pool.attempts == [Attempt("q-b", "original", 0, True, "4", 10, (0, 3), range(20, 22)),
                                  Attempt("q-b", "original", 1, False, "5", 30, (2,), range(40, 41))]
    assert unit.pool.correct == unit.pool.attempts[:1] and unit.check is None and unit.prompt == "prompt b"


def test_a_file_without_usable_attempts_gives_empty_pools():
    table = AttemptColumns().done(["q"], ["original"])
    assert RawUnit("q", "p", table, 0).pool.attempts == []


@pytest.mark.parametrize("large", [False, True])
def test_texts_put_from_threads_in_any_order_are_numbered_in_the_order_added(monkeypatch, large):
    monkeypatch.setattr(raw_store, "FIRST_REGION_BYTES", 16)  # a few texts per region, and batches larger than one
    monkeypatch.setattr(raw_store, "REGION_BYTES", 64)
    kind = pa.large_string() if large else pa.string()
    rng = random.Random(0)
    batches = [[f"t{b}.{i}-" + "é" * rng.randint(0, 30) for i in range(rng.randint(0, 6))] for b in range(40)]
    arrays = [pa.array(["skip", *texts, "skip"], kind).slice(1, len(texts)) for texts in batches]  # offset > 0
    texts = raw_store.Texts()
    with ThreadPoolExecutor(4) as pool:  # put as the reader's threads do, in whatever order they finish
        places = list(pool.map(texts.put, arrays[::-1]))[::-1]
    firsts = [texts.add(p) for p in places]
    text, close = texts.done()
    assert len(texts._regions) > 2
    assert [[text(first + i) for i in range(len(b))] for first, b in zip(firsts, batches)] == batches
    close()


def test_no_texts():
    texts = raw_store.Texts()
    assert texts.add(texts.put(pa.array([], pa.string()))) == 0
    assert texts.add(texts.put(pa.array([""], pa.string()))) == 0
    text, close = texts.done()
    assert text(0) == ""
    close()
