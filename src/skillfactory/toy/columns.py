"""Long multiplication column by column, the way it is taught by hand: the toy corpus's ``steps="columns"``.

Every value an attempt writes is a single-digit fact, a sum of two values written just before it, or the last
digit/carry of a sum, each written right after what it is computed from - so each token the model writes depends
on a few tokens nearby, never on aligning two long numbers (a ~1M-parameter model did not learn ``6300 + 350 =
6650`` from 1.5M tokens of such sums) or on a fact several terms back (measured: ``3 x 6 + 7 x 2 = 16 + 40``)::

    ones: 7 * 6 = 42 -> 2, carry 4
    tens: 3 * 6 = 18, 7 * 2 = 14, 18 + 14 = 32, 32 + 4 = 36 -> 6, carry 3
    hundreds: 3 * 2 = 6, 6 + 3 = 9 -> 9

and the answer is the last column's value followed by the other columns' digits, read from the bottom up
(``962``). Facts are written with ``*``, not the question's ``x``: the digit after "x" is then always the second
factor's first digit (measured: with ``x`` in every fact the model kept taking the wrong digit of it). A wrong
attempt makes exactly one slip (a fact, a sum, a carry, or a misread digit) and carries it honestly through every
later step, so its answer is always wrong and a check can find the slip.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

PLACES = ("ones", "tens", "hundreds", "thousands", "ten thousands", "hundred thousands", "millions",
          "ten millions", "hundred millions", "billions", "ten billions", "hundred billions", "trillions",
          "ten trillions", "hundred trillions", "quadrillions", "ten quadrillions", "hundred quadrillions")
COLUMN_ERRORS = ("fact_slip", "sum_slip", "carry_slip", "misread")
TIMES = "*"  # the sign of a single-digit fact


@dataclass
class Column:
    """One column as written: its facts (digit of a, digit of b, value), the carry it takes in, the running sums
    after the first value, and the carry it passes on (None on the last column, which writes its whole sum)."""

    place: int
    facts: list[tuple[int, int, int]]
    carry_in: int
    sums: list[int]
    carry_out: int | None

    @property
    def total(self) -> int:
        return self.sums[-1] if self.sums else self.facts[0][2]

    @property
    def digit(self) -> str:
        return str(self.total) if self.carry_out is None else str(self.total % 10)

    def render(self) -> str:
        steps = [f"{da} {TIMES} {db} = {v}" for da, db, v in self.facts]
        values = [v for _, _, v in self.facts] + ([self.carry_in] if self.carry_in else [])
        acc = values[0]
        for v, s in zip(values[1:], self.sums):
            steps.append(f"{acc} + {v} = {s}")
            acc = s
        out = f"{self.digit}, carry {self.carry_out}" if self.carry_out else self.digit
        return f"{PLACES[self.place]}: " + ", ".join(steps) + f" -> {out}"


def _digits(n: int) -> list[int]:
    """Digits from the ones up."""
    return [int(c) for c in reversed(str(n))]


def slipped(value: int, rng: random.Random) -> int:
    """``value`` off by one unit of one of its places, never negative and never ``value`` itself."""
    step = 10 ** rng.randrange(len(str(value)))
    return value - step if rng.random() < 0.5 and value - step >= 0 else value + step


def columns(a: int, b: int, rng: random.Random | None = None, error: str | None = None) -> list[Column]:
    """The columns of ``a x b``; with ``error`` (one of ``COLUMN_ERRORS`` but misread, which the caller applies
    to the factor) one slip at a random place, every later value computed honestly from what was written."""
    da, db = _digits(a), _digits(b)
    n_cols = len(da) + len(db) - 1
    facts = [[(da[k - j], db[j], da[k - j] * db[j]) for j in range(len(db)) if 0 <= k - j < len(da)]
             for k in range(n_cols)]
    # where the one slip goes: (kind, column, fact index); kind None = no slip
    slip, slip_col, slip_fact = None, -1, 0
    if error == "fact_slip":
        slip, slip_col = "fact", rng.randrange(n_cols)
        slip_fact = rng.randrange(len(facts[slip_col]))
    elif error == "sum_slip":
        # a column with at least one addition; the carry into it is only known while writing, so pick the
        # column now and the addition when it is written
        slip, slip_col = "sum", rng.choice([k for k in range(n_cols) if len(facts[k]) > 1] or [n_cols - 1])
    elif error == "carry_slip":
        slip, slip_col = ("carry", rng.randrange(n_cols - 1)) if n_cols > 1 else ("fact", 0)
    out, carry = [], 0
    for k in range(n_cols):
        row = list(facts[k])
        here = slip if slip_col == k else None
        if here == "fact":
            da_, db_, v = row[slip_fact]
            row[slip_fact] = (da_, db_, slipped(v, rng))
        values = [v for _, _, v in row] + ([carry] if carry else [])
        sums, acc = [], values[0]
        for i, v in enumerate(values[1:]):
            acc += v
            if here == "sum" and i == len(values) - 2:
                acc = slipped(acc, rng)
            sums.append(acc)
        if here == "sum" and not sums:  # nothing to add: the fact slips
            row[0] = (row[0][0], row[0][1], slipped(row[0][2], rng))
            acc = row[0][2] + carry
        last = k == n_cols - 1
        carry_out = None if last else acc // 10
        if not last and here == "carry":
            carry_out = carry_out + 1 if carry_out == 0 or rng.random() < 0.5 else carry_out - 1
        out.append(Column(k, row, carry, sums, carry_out))
        carry = carry_out or 0
    return out


def columns_value(cols: list[Column]) -> int:
    """The answer the columns write: the last column's value, then the other digits from the bottom up."""
    return int("".join(c.digit for c in reversed(cols)))


def render_columns(cols: list[Column]) -> list[str]:
    return [c.render() for c in cols]
