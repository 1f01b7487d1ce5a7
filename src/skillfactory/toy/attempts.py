"""Noisy solvers: ONE attempt at a question in one prompt variant's style, right or wrong in plausible ways.

The toy corpus teaches the tiny model to attempt a task the way a weak base model does: it shows its working
step by step, ends in ``<answer>``, and is often wrong - an arithmetic slip, a wrong operator, a misread
number, a number left out, or simply a target it never reached. The attempt object keeps the structure (which
numbers, which operations, the values written) so the reflection writer (``checks.py``) can re-check it without
parsing text. Whether an attempt is right is always decided by the task's own verifier, never by the kind of
error drawn here.

Countdown attempts are left-to-right chains ``((a op b) op c) ...`` with one ``Step k`` line per operation;
multiplication attempts split one factor by its digits and add the partial products (``steps="split"``/``"digits"``)
or multiply column by column (``steps="columns"``, ``columns.py``). Both are short on purpose:
every token of an attempt costs sampling, SFT and GRPO time downstream (aim: 30-80 tokens; a 3-digit
product column by column takes ~160).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from fractions import Fraction

from skillfactory.toy.columns import COLUMN_ERRORS, Column, columns, columns_value, render_columns, slipped

COUNTDOWN_ERRORS = ("miss", "slip", "wrong_op", "misread", "drop")
MULT_ERRORS = ("partial_slip", "carry_slip", "misread", "shift")


# ---------------------------------------------------------------- countdown ----------------------------------------
def _apply(a: Fraction, op: str, b: Fraction) -> Fraction | None:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b if b != 0 else None
    raise ValueError(f"unknown operator {op!r}")


def chain_values(numbers: tuple[int, ...], ops: tuple[str, ...]) -> list[int] | None:
    """Left-to-right values of ``numbers[0] ops[0] numbers[1] ...``; None unless every step is a positive integer
    (a tiny model writes and reads positive integers far more reliably)."""
    acc = Fraction(numbers[0])
    out = []
    for op, n in zip(ops, numbers[1:]):
        res = _apply(acc, op, Fraction(n))
        if res is None or res.denominator != 1 or res <= 0:
            return None
        acc = res
        out.append(int(acc))
    return out


def all_chains(numbers: list[int], operators: str, size: int | None = None) -> list[tuple[tuple[int, ...], tuple[str, ...], int]]:
    """Every left-to-right chain over ``size`` of the numbers (default: all), as (order, ops, value)."""
    size = size or len(numbers)
    found = []
    for order in dict.fromkeys(itertools.permutations(numbers, size)):
        for ops in itertools.product(operators, repeat=size - 1):
            vals = chain_values(order, ops)
            if vals is not None:
                found.append((order, ops, vals[-1]))
    return found


def expression(order: tuple[int, ...], ops: tuple[str, ...]) -> str:
    """The chain as one expression, parenthesised only where precedence needs it."""
    expr, has_additive = str(order[0]), False
    for op, n in zip(ops, order[1:]):
        if op in "*/" and has_additive:
            expr, has_additive = f"({expr}) {op} {n}", False
        else:
            expr = f"{expr} {op} {n}"
            has_additive = has_additive or op in "+-"
    return expr


def _names(nums) -> str:
    nums = [str(n) for n in nums]
    return nums[0] if len(nums) == 1 else ", ".join(nums[:-1]) + " and " + nums[-1]


@dataclass
class CountdownAttempt:
    """One countdown attempt: the numbers as written (``order``), the operators, the step results as written
    (``written``), and the operators/numbers of the final answer expression."""

    variant: str
    order: tuple[int, ...]
    ops: tuple[str, ...]
    written: list[int]  # step results as the attempt writes them (a slip makes them differ from the truth)
    answer_ops: tuple[str, ...]  # operators of the answer expression (differ from ops after a wrong_op error)
    error: str | None = None  # the error drawn, for statistics only
    text: str = ""

    @property
    def answer(self) -> str:
        return expression(self.order, self.answer_ops)


def _countdown_preamble(variant: str, numbers: list[int], target: int, order, ops, rng: random.Random,
                        operators: str) -> str:
    if variant == "plan_and_execute":
        if len(order) == 2:
            return f"Plan: combine {order[0]} and {order[1]} to get {target}.\n"
        rest = _names(order[2:])
        return f"Plan: combine {order[0]} and {order[1]} first, then use {rest} to reach {target}.\n"
    if variant == "rephrase":
        if rng.random() < 0.5:
            return f"I must make {target} from {_names(numbers)}.\n"
        return f"So the goal is {target}, using {_names(numbers)}.\n"
    if variant == "alternatively":
        a, b = rng.sample(list(numbers), 2)
        other = f"{a} {rng.choice(operators)} {b}"
        first = f"{order[0]} {ops[0]} {order[1]}"
        if other == first:
            return f"I could start with {first} or with something else. I start with {first}.\n"
        return f"I could start with {other} or with {first}. I start with {first}.\n"
    return ""


def render_countdown(att: CountdownAttempt, numbers: list[int], target: int, rng: random.Random,
                     operators: str) -> str:
    lines = [_countdown_preamble(att.variant, numbers, target, att.order, att.ops, rng, operators).rstrip("\n")]
    acc = att.order[0]
    for k, (op, n, w) in enumerate(zip(att.ops, att.order[1:], att.written), start=1):
        lines.append(f"Step {k}: {acc} {op} {n} = {w}")
        acc = w
    lines.append(f"<answer>\n{att.answer}\n</answer>")
    return "\n".join(line for line in lines if line)


def countdown_attempt(numbers: list[int], target: int, variant: str, rng: random.Random, p_correct: float,
                      operators: str = "+-", in_order: float = 0.0,
                      errors: dict[str, float] | None = None) -> CountdownAttempt:
    """One attempt: a solution with probability ``p_correct`` (when a chain solution exists), else a wrong one.

    With probability ``in_order`` the attempt keeps the question's order of numbers whenever a chain in that
    order fits (a solution for a right attempt, any chain for a wrong one). Copying a list in order is the one
    kind of copying a tiny model learns quickly; picking numbers out of order is what it got wrong most.
    ``errors`` weighs the kinds of a wrong attempt (default: all of ``COUNTDOWN_ERRORS`` alike).
    """
    chains = all_chains(numbers, operators)
    solutions = [c for c in chains if c[2] == target]
    if solutions and rng.random() < p_correct:
        error = None
    elif errors:
        kinds = sorted(errors)
        error = rng.choices(kinds, weights=[errors[k] for k in kinds])[0]
    else:
        error = rng.choice(COUNTDOWN_ERRORS)
    if in_order and rng.random() < in_order:
        same = [c for c in chains if c[0] == tuple(numbers)]
        same_solutions = [c for c in same if c[2] == target]
        if same_solutions if error is None else same:
            chains, solutions = same, same_solutions
    misses = [c for c in chains if c[2] != target]
    if error is None:
        order, ops, _ = rng.choice(solutions)
        att = CountdownAttempt(variant, order, ops, chain_values(order, ops), ops)
    else:
        att = _wrong_countdown(numbers, target, error, rng, operators, chains, solutions, misses)
        att.variant = variant
    att.text = render_countdown(att, numbers, target, rng, operators)
    return att


def _wrong_countdown(numbers, target, error, rng, operators, chains, solutions, misses) -> CountdownAttempt:
    variant_free = ""  # the caller sets the variant
    if error == "drop" and len(numbers) >= 3:
        short = all_chains(numbers, operators, size=len(numbers) - 1)
        if short:
            order, ops, _ = rng.choice(short)
            return CountdownAttempt(variant_free, order, ops, chain_values(order, ops), ops, error)
        error = "miss"
    if error in ("wrong_op", "misread") and solutions:
        order, ops, _ = rng.choice(solutions)
        if error == "wrong_op":
            k = rng.randrange(len(ops))
            choices = [o for o in operators if o != ops[k]] or ["+"]
            bad = ops[:k] + (rng.choice(choices),) + ops[k + 1:]
            vals = chain_values(order, ops)
            # the step shows the wrong operator but keeps the intended result; the answer carries the wrong one
            return CountdownAttempt(variant_free, order, bad, vals, bad, error)
        k = rng.randrange(len(order))
        misread = max(1, order[k] + rng.choice([-2, -1, 1, 2]))
        new_order = order[:k] + (misread,) + order[k + 1:]
        vals = chain_values(new_order, ops)
        if vals is not None:
            return CountdownAttempt(variant_free, new_order, ops, vals, ops, error)
        error = "miss"
    if misses:
        order, ops, value = rng.choice(misses)
        vals = chain_values(order, ops)
        if error == "slip":
            vals = vals[:-1] + [target]  # the last step "reaches" the target by an arithmetic slip
        return CountdownAttempt(variant_free, order, ops, vals, ops, error if error == "slip" else "miss")
    # every chain reaches the target (rare, tiny ranges): misread a number instead
    order, ops, _ = rng.choice(chains) if chains else (tuple(numbers), ("+",) * (len(numbers) - 1), 0)
    order = (order[0] + 1,) + order[1:]
    vals = chain_values(order, ops) or [sum(order)]
    return CountdownAttempt(variant_free, order, ops, vals, ops, "misread")


# ---------------------------------------------------------------- multiplication -----------------------------------
@dataclass
class MultAttempt:
    """One multiplication attempt: ``a x b`` computed by splitting ``b`` (as written) into digit parts.

    With ``steps="digits"`` each partial product ``a x part`` is itself split by ``a``'s digits into
    single-digit facts (``37 x 20 = 30 x 20 + 7 x 20 = 600 + 140 = 740``); ``facts`` holds those values as
    written, one list per part (empty with ``steps="split"``). With ``steps="columns"`` nothing is split:
    ``cols`` holds the columns as written (``columns.py``) and ``parts``/``partials``/``sums`` stay empty."""

    variant: str
    a: int  # first factor as written (a misread changes it)
    b: int  # the factor that is split, as written
    parts: list[int]  # b's digit parts, e.g. 12 -> [10, 2]
    partials: list[int]  # a * part, as written
    sums: list[int] = field(default_factory=list)  # running sums as written
    error: str | None = None
    text: str = ""
    facts: list[list[int]] = field(default_factory=list)  # steps="digits": (digit part of a) * part, as written
    cols: list[Column] = field(default_factory=list)  # steps="columns": the columns as written

    @property
    def answer(self) -> int:
        if self.cols:
            return columns_value(self.cols)
        return self.sums[-1] if self.sums else self.partials[-1]


MULT_STEPS = ("split", "digits", "columns")


def digit_parts(n: int) -> list[int]:
    s = str(n)
    return [int(d) * 10 ** (len(s) - 1 - i) for i, d in enumerate(s) if d != "0"]


def _mult_preamble(variant: str, x: int, y: int, a: int, b: int, parts: list[int], rng: random.Random) -> str:
    if variant == "plan_and_execute":
        return f"Plan: split {b} into {_names(parts)}, multiply {a} by each part, then add.\n"
    if variant == "rephrase":
        return f"I need the product of {x} and {y}.\n" if rng.random() < 0.5 else f"So the task is {x} times {y}.\n"
    if variant == "alternatively":
        return f"I could split {a} or split {b}. I split {b}.\n"
    return ""


def partial_line(a: int, part: int, value: int, facts: list[int] | None = None) -> str:
    """``a x part = value``; with ``facts`` (one per digit part of ``a``) the single-digit facts in between:
    ``37 x 20 = 30 x 20 + 7 x 20 = 600 + 140 = 740``. A one-digit-part ``a`` is a fact itself."""
    digits_a = digit_parts(a) or [0]
    if not facts or len(digits_a) == 1:
        return f"{a} x {part} = {value}"
    return (f"{a} x {part} = " + " + ".join(f"{d} x {part}" for d in digits_a) + " = "
            + " + ".join(map(str, facts)) + f" = {value}")


def _columns_preamble(variant: str, x: int, y: int, a: int, b: int, rng: random.Random) -> str:
    if variant == "plan_and_execute":
        return "Plan: multiply digit by digit, column by column from the ones, and carry.\n"
    if variant == "rephrase":
        return f"I need the product of {x} and {y}.\n" if rng.random() < 0.5 else f"So the task is {x} times {y}.\n"
    if variant == "alternatively":
        return f"I could split {b} or go column by column. I go column by column with {a} x {b}.\n"
    return ""


def render_mult(att: MultAttempt, x: int, y: int, rng: random.Random) -> str:
    if att.cols:
        lines = [_columns_preamble(att.variant, x, y, att.a, att.b, rng).rstrip("\n"), *render_columns(att.cols)]
        lines.append(f"<answer>\n{att.answer}\n</answer>")
        return "\n".join(line for line in lines if line)
    lines = [_mult_preamble(att.variant, x, y, att.a, att.b, att.parts, rng).rstrip("\n")]
    if len(att.parts) > 1:
        lines.append(f"{att.a} x {att.b} = " + " + ".join(f"{att.a} x {p}" for p in att.parts))
    facts = att.facts or [None] * len(att.parts)
    for p, v, f in zip(att.parts, att.partials, facts):
        lines.append(partial_line(att.a, p, v, f))
    acc = att.partials[0]
    for v, s in zip(att.partials[1:], att.sums):
        lines.append(f"{acc} + {v} = {s}")
        acc = s
    lines.append(f"<answer>\n{att.answer}\n</answer>")
    return "\n".join(line for line in lines if line)


def _running(partials: list[int]) -> list[int]:
    return list(itertools.accumulate(partials))[1:]


def mult_attempt(x: int, y: int, variant: str, rng: random.Random, p_correct: float,
                 in_order: float = 0.0, steps: str = "split") -> MultAttempt:
    """One attempt at ``x * y``: right with probability ``p_correct``, else one plausible slip.

    With probability ``in_order`` the attempt keeps the question's order (``x x y``, splitting ``y``), else it
    picks the order at random: a tiny model copies a fixed order far more reliably. ``steps``: "split" writes
    each partial product whole (``37 x 20 = 740``), "digits" through single-digit facts (see ``MultAttempt``),
    "columns" long multiplication column by column (``columns.py``).
    """
    if steps not in MULT_STEPS:
        raise ValueError(f"steps must be one of {MULT_STEPS}, got {steps!r}")
    a, b = (x, y) if (in_order and rng.random() < in_order) or rng.random() < 0.5 else (y, x)
    parts = digit_parts(b) or [0]
    error = None if rng.random() < p_correct else rng.choice(COLUMN_ERRORS if steps == "columns" else MULT_ERRORS)
    if steps == "columns":
        if error == "misread":
            a = _misread(a, rng)
        cols = columns(a, b, rng, None if error == "misread" else error)
        att = MultAttempt(variant, a, b, [], [], [], error, cols=cols)
        att.text = render_mult(att, x, y, rng)
        return att
    if steps == "digits":
        att = _digit_steps(a, b, parts, error, variant, rng)
        att.text = render_mult(att, x, y, rng)
        return att
    if error == "misread":
        s = list(str(a))
        k = rng.randrange(len(s))
        s[k] = str((int(s[k]) + rng.choice([1, 9])) % 10)
        if s[0] != "0":
            a = int("".join(s))
    partials = [a * p for p in parts]
    if error == "shift" and len(parts) > 1:
        partials[0] = a * int(str(parts[0])[0])  # forgot the zeros of the first part
    elif error == "partial_slip" or (error == "shift" and len(parts) == 1):
        k = rng.randrange(len(partials))
        partials[k] = max(1, partials[k] + rng.choice([-1, 1]) * 10 ** rng.randrange(len(str(partials[k]))))
    sums = _running(partials)
    if error == "carry_slip":
        if sums:
            sums[-1] += rng.choice([-1, 1]) * 10 ** rng.randrange(1, len(str(sums[-1])))
        else:
            partials[-1] += rng.choice([-1, 1]) * 10 ** rng.randrange(1, max(2, len(str(partials[-1]))))
    att = MultAttempt(variant, a, b, parts, partials, sums, error)
    att.text = render_mult(att, x, y, rng)
    return att


def _misread(a: int, rng: random.Random) -> int:
    """``a`` with one digit off by one (never a leading zero, never ``a`` itself)."""
    s = list(str(a))
    k = rng.randrange(len(s))
    for delta in rng.sample([1, 9], 2):
        d = str((int(s[k]) + delta) % 10)
        if k or d != "0":
            return int("".join(s[:k] + [d] + s[k + 1:]))
    return a + 1


def _digit_steps(a: int, b: int, parts: list[int], error: str | None, variant: str,
                 rng: random.Random) -> MultAttempt:
    """A ``steps="digits"`` attempt: every value written is a single-digit fact or a sum of written values, and
    a wrong attempt has exactly one slip, carried honestly through the sums after it."""
    if error == "misread":
        a = _misread(a, rng)
    facts = [[d * p for d in (digit_parts(a) or [0])] for p in parts]
    cells = [(k, j) for k, row in enumerate(facts) for j in range(len(row))]
    if error == "shift":
        zeros = [(k, j) for k, j in cells if facts[k][j] >= 100 and facts[k][j] % 10 == 0]
        if zeros:
            k, j = rng.choice(zeros)
            facts[k][j] //= 10  # a zero forgotten
        else:
            error = "partial_slip"
    if error == "partial_slip":
        k, j = rng.choice(cells)
        facts[k][j] = slipped(facts[k][j], rng)
    partials = [sum(row) for row in facts]
    sums = _running(partials)
    if error == "carry_slip":
        multi = [k for k, row in enumerate(facts) if len(row) > 1]
        if sums:
            sums[-1] = slipped(sums[-1], rng)
        elif multi:
            k = rng.choice(multi)
            partials[k] = slipped(partials[k], rng)
        else:
            facts[0][0] = partials[0] = slipped(facts[0][0], rng)
    return MultAttempt(variant, a, b, parts, partials, sums, error, facts=facts)
