"""Draws from a ``random.Random`` that take from its generator exactly what its own methods take, minus their layers.

Why: a trace is a dozen draws (a seeding, a choice, a sample, a reflection and a glue phrase per block), 1.2
million at the published scale. ``Random.choice`` is two Python frames around one ``getrandbits``,
``Random.sample`` checks its argument against an ABC on every call and ``Random.seed`` dispatches on the
argument's type: together about a tenth of a build. These are the same algorithms as CPython's ``random.py``
(3.10 to 3.13: ``_randbelow_with_getrandbits``, ``choice``, ``sample``, ``seed`` version 2), so a trace's bytes do
not change; tests/traces/test_draws.py holds every function to the method it replaces, draw for draw.

``rng`` is a plain ``random.Random`` (a subclass that overrides ``random`` or ``getrandbits`` draws otherwise).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from hashlib import sha512
from math import ceil, log
from typing import Any, TypeVar

T = TypeVar("T")

_seed_int = random.Random.__mro__[1].seed  # _random.Random.seed: the C seeding, given an int


def below(rng: random.Random, n: int) -> int:
    """``rng.randrange(n)`` (``Random._randbelow`` once ``n`` is checked)."""
    if n <= 0:
        raise ValueError("empty range for randrange()")
    getrandbits = rng.getrandbits
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return r


def choice(rng: random.Random, seq: Sequence[T]) -> T:
    """``rng.choice(seq)``."""
    n = len(seq)
    if not n:
        raise IndexError("Cannot choose from an empty sequence")
    getrandbits = rng.getrandbits
    k = n.bit_length()
    r = getrandbits(k)
    while r >= n:
        r = getrandbits(k)
    return seq[r]


def sample(rng: random.Random, population: Sequence[T], k: int) -> list[T]:
    """``rng.sample(population, k)`` (no ``counts``)."""
    n = len(population)
    if not 0 <= k <= n:
        raise ValueError("Sample larger than population or is negative")
    result: list[Any] = [None] * k
    setsize = 21  # as random.py: a list of n is smaller than a set of k
    if k > 5:
        setsize += 4 ** ceil(log(k * 3, 4))
    if n <= setsize:
        pool = list(population)
        for i in range(k):
            j = below(rng, n - i)
            result[i] = pool[j]
            pool[j] = pool[n - i - 1]
    else:
        selected: set[int] = set()
        for i in range(k):
            j = below(rng, n)
            while j in selected:
                j = below(rng, n)
            selected.add(j)
            result[i] = population[j]
    return result


def seed(rng: random.Random, text: str) -> None:
    """``rng.seed(text)``: the text and its sha512 as one big-endian integer, seeded by the C generator."""
    data = text.encode()
    _seed_int(rng, int.from_bytes(data + sha512(data).digest(), "big"))
    rng.gauss_next = None  # type: ignore[attr-defined]
