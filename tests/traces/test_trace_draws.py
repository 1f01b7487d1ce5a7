"""draws.py takes from the generator exactly what random.Random's own methods take: the same results, and the
same state afterwards (so every later draw of a trace is the same too), on the sizes a build uses and beyond."""

from __future__ import annotations

import random

import pytest

from skillfactory.traces import draws


def _pair(seed: int) -> tuple[random.Random, random.Random]:
    return random.Random(seed), random.Random(seed)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 16, 31, 32, 33, 1000, 2**40 + 3])
def test_below_is_randrange(n):
    ours, theirs = _pair(n)
    assert [draws.below(ours, n) for _ in range(200)] == [theirs.randrange(n) for _ in range(200)]
    assert ours.getstate() == theirs.getstate()


def test_choice_is_random_choice():
    ours, theirs = _pair(1)
    for size in [1, 2, 3, 4, 9, 17, 64, 100]:
        seq = [f"x{i}" for i in range(size)]
        assert [draws.choice(ours, seq) for _ in range(50)] == [theirs.choice(seq) for _ in range(50)]
        assert draws.choice(ours, tuple(seq)) == theirs.choice(tuple(seq))
    assert ours.getstate() == theirs.getstate()


@pytest.mark.parametrize("n,k", [(0, 0), (1, 0), (1, 1), (5, 3), (16, 4), (21, 5), (22, 5), (25, 6), (40, 6),
                                 (100, 3), (100, 20), (1000, 999), (5000, 7)])
def test_sample_is_random_sample_in_both_of_its_branches(n, k):
    # random.sample copies the population while n <= setsize (21, more for k > 5), else draws into a set
    ours, theirs = _pair(n * 1000 + k)
    population = list(range(n))
    for _ in range(20):
        assert draws.sample(ours, population, k) == theirs.sample(population, k)
    assert ours.getstate() == theirs.getstate()


def test_seed_is_random_seed_of_a_string():
    for text in ["", "0/raw/0123456789abcdef/*C_full/0/1", "7/q-é-ü/*C*IC/3/", "x" * 500]:
        ours, theirs = random.Random(99), random.Random(5)
        ours.gauss(0, 1)  # leaves a gauss_next behind, which seeding clears
        draws.seed(ours, text)
        theirs.seed(text)
        assert ours.getstate() == theirs.getstate()
        assert ours.random() == theirs.random()


def test_bad_arguments_raise_as_random_does():
    rng = random.Random(0)
    with pytest.raises(IndexError):
        draws.choice(rng, [])
    with pytest.raises(ValueError):
        draws.below(rng, 0)
    with pytest.raises(ValueError):
        draws.sample(rng, [1, 2], 3)
