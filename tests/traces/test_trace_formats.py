"""Selection functions on random small pools: never raise, give a trace exactly when one exists.

Feasibility is decided here by brute force over all orderings of the pool, independently of the builder's
constructive choice (which draws the variant combination first so that a greedy pick never blocks).
"""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from skillfactory.traces.formats import Attempt, Pool, Selection, choose_n, render, select

VARIANTS = ("a", "b", "c", "d")

pools = st.lists(st.tuples(st.sampled_from(VARIANTS), st.booleans()), min_size=0, max_size=7)


def make_pool(spec: list[tuple[str, bool]]) -> Pool:
    atts = [Attempt("q", v, i, ok, "1" if ok else "2", i, (0,), (i,)) for i, (v, ok) in enumerate(spec)]
    return Pool("q", atts)


def feasible(fmt: str, pool: Pool, n: int, distinct: bool) -> bool:
    """Does any ordered choice of attempts give this format with n blocks?"""
    k = n - 1 if fmt == "*C*IC" else n  # different attempts needed
    for combo in itertools.permutations(pool.attempts, k):
        if distinct and len({a.variant for a in combo}) < k:
            continue
        if fmt in ("*C", "0C") and combo[-1].correct:
            return True
        if fmt == "*CC" and combo[-1].correct and combo[-2].correct:
            return True
        if fmt == "*C*IC" and not combo[-1].correct and any(a.correct for a in combo[:-1]):
            return True
        if fmt == "random" and pool.correct:
            return True
    return False


@settings(max_examples=150, deadline=None)
@given(spec=pools, fmt=st.sampled_from(["*C", "*CC", "*C*IC", "random"]), n=st.integers(1, 5),
       distinct=st.booleans(), seed=st.integers(0, 10**6))
def test_selection_exists_exactly_when_feasible(spec, fmt, n, distinct, seed):
    pool = make_pool(spec)
    n = max(n, {"*CC": 2, "*C*IC": 3}.get(fmt, 1))
    sel = select(fmt, pool, random.Random(seed), n, distinct)
    assert isinstance(sel, Selection) == feasible(fmt, pool, n, distinct), sel
    if isinstance(sel, str):
        return
    atts = sel.attempts
    assert len(atts) == n
    unique = atts[:-1] if fmt == "*C*IC" else atts
    assert len({id(a) for a in unique}) == len(unique)
    if distinct:
        assert len({a.variant for a in unique}) == len(unique)
    if fmt in ("*C", "*CC", "*C*IC"):
        assert atts[-1].correct
    if fmt == "*CC":
        assert atts[-2].correct and sel.confirm
    if fmt == "*C*IC":
        assert not atts[-2].correct and sel.backtrack and any(a is atts[-1] for a in atts[:-2])


@settings(max_examples=100, deadline=None)
@given(spec=pools, fmt=st.sampled_from(["*C", "*CC", "*C*IC", "random", "0C"]), max_responses=st.integers(3, 6),
       distinct=st.booleans(), seed=st.integers(0, 10**6))
def test_choose_n_stays_within_bounds_and_capacity(spec, fmt, max_responses, distinct, seed):
    pool = make_pool(spec)
    n = choose_n(fmt, pool, random.Random(seed), max_responses, distinct)
    lo = {"*CC": 2, "*C*IC": 3}.get(fmt, 1)
    assert lo <= n <= max_responses
    if fmt == "0C":
        assert n == 1
    # whenever some n works, the drawn n works too
    if any(feasible(fmt, pool, m, distinct) for m in range(lo, max_responses + 1)) and fmt != "0C":
        assert feasible(fmt, pool, n, distinct)


def test_same_rng_seed_same_selection_and_text():
    pool = make_pool([(v, i % 3 == 0) for i, v in enumerate(VARIANTS * 3)])

    def one(seed):
        rng = random.Random(seed)
        sel = select("*C", pool, rng, 4, True)
        return render(sel, rng, lambda r: f"attempt {r} <answer>x</answer>", lambda r: f"check {r}").assistant

    assert one("s/q/*C/0/") == one("s/q/*C/0/")
    assert len({one(f"s/q/*C/0/{i}") for i in range(20)}) > 5  # the seed matters
