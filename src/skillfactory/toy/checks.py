"""Reflection writers: a short step-by-step check of ONE attempt, ending in exactly one verdict.

A check re-computes the attempt's answer (countdown: re-evaluates the answer expression step by step and compares
the numbers it uses with the given ones; multiplication: re-multiplies by splitting the *other* factor, so the
check does not simply repeat the attempt's own slip) and ends with ``<verdict>Correct</verdict>`` or
``<verdict>Incorrect</verdict>``.

Some checks are mistaken on purpose (``flip``): the check then makes a slip of its own that leads to the wrong
verdict, so the text stays consistent with its verdict. SkillFactory keeps only reflections whose verdict equals
the verifier's truth, so a base model whose checks are mostly but not always right is exactly its premise.
The honest verdict is computed here from the attempt's structure and must agree with the task verifier; the
corpus drops (and counts) any conversation where it does not.
"""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction

from skillfactory.toy.attempts import CountdownAttempt, MultAttempt, _names, digit_parts, partial_line
from skillfactory.toy.columns import columns, columns_value, render_columns

VERDICT = {True: "<verdict>Correct</verdict>", False: "<verdict>Incorrect</verdict>"}


def _fmt(v: Fraction) -> str:
    return str(v.numerator) if v.denominator == 1 else f"{v.numerator}/{v.denominator}"


def _eval_steps(order, ops) -> list[tuple[str, str, str, Fraction | None]]:
    acc = Fraction(order[0])
    steps = []
    for op, n in zip(ops, order[1:]):
        if op == "/" and n == 0:
            steps.append((_fmt(acc), op, str(n), None))
            return steps
        new = {"+": acc + n, "-": acc - n, "*": acc * n, "/": acc / n if n else acc}[op]
        steps.append((_fmt(acc), op, str(n), new))
        acc = new
    return steps


def countdown_honest(att: CountdownAttempt, numbers: list[int], target: int) -> bool:
    """The check's own verdict: same numbers (as a multiset) and the answer expression's value equals target."""
    steps = _eval_steps(att.order, att.answer_ops)
    return Counter(att.order) == Counter(numbers) and bool(steps) and steps[-1][3] == target


def countdown_check(att: CountdownAttempt, numbers: list[int], target: int, flip: bool, rng: random.Random,
                    compare_last: bool = False) -> tuple[str, bool]:
    """(reflection text, verdict). With ``flip`` the check makes a slip and reaches the opposite verdict.

    ``compare_last``: every comparison is written after both of its sides ("It uses 6, 5 and 3; the numbers
    are 6, 5 and 3: the same." / "This gives 14; the target is 14: the same."), so the word that decides comes
    when both numbers are next to it. The older form decides first ("14 equals the target 14."), which a tiny
    model must do by looking back at the question: measured, it got the comparison wrong about half the time.
    """
    honest = countdown_honest(att, numbers, target)
    verdict = honest != flip
    lines = [f"The answer is {att.answer}."]
    used, given = Counter(att.order), Counter(numbers)
    both = f"It uses {_names(att.order)}; the numbers are {_names(numbers)}:"
    if used != given and not (flip and not honest):
        extra = sorted((used - given).elements())
        missing = sorted((given - used).elements())
        if compare_last:
            lines.append(f"{both} {extra[0]} is not given." if extra else f"{both} it leaves out {missing[0]}.")
        else:
            lines.append(f"It uses {_names(att.order)}, but the numbers are {_names(numbers)}.")
            lines.append(f"{extra[0]} is not given." if extra else f"It leaves out {missing[0]}.")
        return "\n".join(lines + [VERDICT[False]]), False
    lines.append(f"{both} the same." if compare_last else f"It uses {_names(numbers)}, as given.")
    steps = _eval_steps(att.order, att.answer_ops)
    for k, (a, op, b, v) in enumerate(steps):
        last = k == len(steps) - 1
        if last and flip:
            v = Fraction(target) if not honest else Fraction(target + rng.choice([-2, -1, 1, 2]))
        if v is None:
            lines.append(f"{a} {op} {b} cannot be computed.")
            return "\n".join(lines + [VERDICT[False]]), False
        lines.append(f"{a} {op} {b} = {_fmt(v)}")
    final = Fraction(target) if (flip and not honest) else steps[-1][3]
    if flip and honest:
        final = Fraction(lines[-1].rsplit("= ", 1)[1])
    if compare_last:
        lines.append(f"This gives {_fmt(final)}; the target is {target}: {'the same' if final == target else 'not the same'}.")
    elif final == target:
        lines.append(f"{_fmt(final)} equals the target {target}.")
    else:
        lines.append(f"{_fmt(final)} is not the target {target}.")
    return "\n".join(lines + [VERDICT[verdict]]), verdict


def mult_check(att: MultAttempt | None, answer: str | None, x: int, y: int, flip: bool, rng: random.Random,
               compare_last: bool = False, steps: str = "split") -> tuple[str, bool]:
    """(reflection text, verdict) for a multiplication attempt whose extracted answer is ``answer``.

    The check splits the factor the attempt did not split, so its partial products differ from the attempt's.
    ``steps="digits"`` writes each partial product through single-digit facts, as such attempts do.
    """
    product = x * y
    if answer is None or not answer.isdigit():
        return "There is no number in the answer tags.\n" + VERDICT[False], False
    given = int(answer)
    honest = given == product
    verdict = honest != flip
    if steps == "columns":
        return _columns_check(att, given, x, y, honest, flip, rng, compare_last)
    split_b = att.a if att is not None and att.b in (x, y) else y  # split the factor the attempt kept whole
    other = x if split_b == y else y
    if split_b not in (x, y):
        split_b, other = y, x
    parts = digit_parts(split_b) or [0]
    # one row of values per partial product: its single-digit facts ("digits") or the partial itself ("split")
    rows = [[d * p for d in (digit_parts(other) or [0])] if steps == "digits" else [other * p] for p in parts]
    if flip and honest:
        k = rng.randrange(len(rows))
        j = rng.randrange(len(rows[k])) if len(rows[k]) > 1 else 0  # (no draw for one: same bytes as before)
        rows[k][j] += rng.choice([-1, 1]) * 10 ** rng.randrange(len(str(rows[k][j])))
    elif flip and not honest:
        rows[-1][-1] += given - product  # the check "agrees" with the wrong answer by a slip
        if rows[-1][-1] <= 0:  # no plausible slip reaches that answer: the check stays honest
            return mult_check(att, answer, x, y, False, rng, compare_last, steps)
    partials = [sum(row) for row in rows]
    lines = [f"The answer is {given}.", f"Check by splitting {split_b}:"]
    lines += [partial_line(other, p, v, row if steps == "digits" else None) for p, v, row in zip(parts, partials, rows)]
    acc = partials[0]
    for v in partials[1:]:
        lines.append(f"{acc} + {v} = {acc + v}")
        acc += v
    lines.append(_product_comparison(acc, given, compare_last))
    return "\n".join(lines + [VERDICT[verdict]]), verdict


def _product_comparison(value: int, given: int, compare_last: bool) -> str:
    """The last line of a multiplication check: the product it got against the answer."""
    if compare_last:
        return f"This gives {value}; the answer is {given}: {'the same' if value == given else 'not the same'}."
    if value == given:
        return f"This gives {value}, the same as the answer."
    return f"This gives {value}, not {given}."


def _columns_check(att: MultAttempt | None, given: int, x: int, y: int, honest: bool, flip: bool,
                   rng: random.Random, compare_last: bool) -> tuple[str, bool]:
    """The column check: long multiplication again with the factors swapped (other facts in other orders, so it
    does not copy the attempt's lines). A mistaken check either slips on a fact (a right answer then looks
    wrong) or redoes the attempt's own columns, slip and all (a wrong answer then looks right)."""
    first, second = (att.b, att.a) if att is not None and {att.a, att.b} == {x, y} else (y, x)
    if flip and not honest:
        if att is None or not att.cols:  # nothing to repeat: the check stays honest
            return _columns_check(att, given, x, y, honest, False, rng, compare_last)
        first, second, cols = att.a, att.b, att.cols
    else:
        cols = columns(first, second, rng, "fact_slip" if flip else None)
    value = columns_value(cols)
    lines = [f"The answer is {given}.", f"Check with {first} x {second}:", *render_columns(cols)]
    lines.append(_product_comparison(value, given, compare_last))
    verdict = value == given
    return "\n".join(lines + [VERDICT[verdict]]), verdict
