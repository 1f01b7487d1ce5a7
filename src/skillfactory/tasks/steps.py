"""Reading a countdown answer as a chain of steps whose operands are given numbers or earlier results.

Why a module of its own: a step's result can be any rational - ``15 - 22 = -7``, ``3 / 4 = 3/4`` (or
``= 0.75``) - and a later step then writes that value as its operand: ``57 - -7``, ``57 - (-7)``,
``8 * 3/4``, ``8 * (3/4)``, ``8 * 0.75``. Read literal by literal, ``-7`` is the number 7 negated and ``3/4``
is two numbers, neither of which was given, so a right derivation was rejected while the same solution
written as one expression was accepted. The rule here: a step answer verifies exactly when some reading of
it is a derivation, which is exactly when its expression form verifies.

A *reading* of a step's left side decides, for each span at an operand position that spells a number - an
integer, a decimal or ``p/q`` in lowest terms, with a leading minus, in parentheses or not - whether it is one
operand, an unused earlier result of that value (:func:`readings`). Every other literal is a given number, or
an earlier result of the same value (results first: they become available later than given numbers, so using
them first never loses a valid reading). Readings differ in value only after ``/`` (``8 / 3/4`` is
``8 / (3/4)`` with ``3/4`` read as one operand, ``(8 / 3) / 4`` by precedence) and in what they use up, so an
answer is accepted when some choice of readings, one per step, makes a derivation: each stated result true,
each operand available, each result used exactly once, each given number at most as often as given (all of
them when ``use_all``), the last value the target. The search is depth first, one-operand spans before the
literal reading, at most :data:`MAX_READINGS` readings in all (a real answer needs one per step); the reason
reported is where the reading that got furthest breaks. A step whose whole left side is one earlier result
(``Step 2: 3/4 = 3/4``) derives nothing, so that left side is read literally (3 divided by 4).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from skillfactory.tasks.arith import (
    ArithError, Neg, Node, Num, Value, apply_op, compile_tokens, eval_rpn, format_value, split_statement,
)
from skillfactory.tasks.base import CheckResult

MAX_READINGS = 32  # step readings tried per answer, all steps together (a real answer needs one per step)
_MAX_WRAP = 3  # parentheses / minus signs around a spelled result, at most


@dataclass(frozen=True)
class _Step:
    text: str
    lhs: list  # tokens of the left side
    stated: Value | None  # the value after "=", if any


def _spelled(tokens: list, i: int, depth: int = 0) -> list[tuple[Value, int]]:
    """Values an operand starting at ``tokens[i]`` spells as one number, with the index after it, longest
    first: ``7``, ``-7``, ``(-7)``, ``0.75``, ``3/4``, ``-(3/4)`` ... A fraction counts only in lowest terms
    (``6/3`` is a division, not the result 2)."""
    if depth > _MAX_WRAP or i >= len(tokens):
        return []
    tok = tokens[i]
    if tok == "(":
        inner = _spelled(tokens, i + 1, depth + 1)
        return [(v, k + 1) for v, k in inner if k < len(tokens) and tokens[k] == ")"]
    if tok == "-":
        if i + 1 < len(tokens) and tokens[i + 1] == "-":
            return []  # "- -7" is a negation of "-7", read as such by the parser
        return [(-v, k) for v, k in _spelled(tokens, i + 1, depth + 1)]
    if not "0" <= tok[0] <= "9":
        return []
    value: Value = Fraction(tok) if "." in tok else int(tok)
    out: list[tuple[Value, int]] = []
    den = tokens[i + 2] if i + 2 < len(tokens) and tokens[i + 1] == "/" else None
    if isinstance(den, str) and den.isdigit() and "." not in tok and int(den) > 1:
        q = Fraction(int(tok), int(den))
        if q.denominator == int(den):  # lowest terms, as a result is written: 3/4, not 6/8 or 0/1 or 6/3
            out.append((q, i + 3))
    out.append((value.numerator if isinstance(value, Fraction) and value.denominator == 1 else value, i + 1))
    return out


def _operand_starts(tokens: list) -> list[int]:
    """Indices where the literal reading of ``tokens`` expects an operand (start, after an operator, "(", "-")."""
    starts, expect = [], True
    for i, tok in enumerate(tokens):
        if expect:
            starts.append(i)
            expect = tok in ("(", "-")
        else:
            expect = tok in ("+", "-", "*", "/")
    return starts


_Unread = list[tuple[str, set[str]]]  # used-up earlier results spelled but not read as such: (spelling, literals)


def readings(tokens: list, results: Counter, produced: frozenset) -> Iterator[tuple[list, frozenset, _Unread]]:
    """The readings of one step's left side, lazily, one-operand spans first and the literal reading last, each
    as (tokens with the chosen spans replaced by one :class:`Num` each, ids of those Nums, earlier results
    spelled but left unread - for a clearer error when their literals then fit nothing)."""
    spans: list[tuple[int, int, Value]] = []
    spent: list[tuple[int, int]] = []
    for i in _operand_starts(tokens):
        for value, end in _spelled(tokens, i):
            if end - i < 2:
                continue  # a bare literal: the literal reading already prefers results
            if results[value] > 0:
                spans.append((i, end, value))
            elif value in produced:
                spent.append((i, end))

    def pick(j: int, free_from: int, claimed: Counter, chosen: list) -> Iterator[list]:
        if j == len(spans):
            if not (len(chosen) == 1 and chosen[0][:2] == (0, len(tokens))):  # not just an earlier result
                yield chosen
            return
        start, end, value = spans[j]
        if start >= free_from and results[value] > claimed[value]:
            claimed[value] += 1
            yield from pick(j + 1, end, claimed, [*chosen, spans[j]])
            claimed[value] -= 1
        yield from pick(j + 1, free_from, claimed, chosen)

    for chosen in pick(0, 0, Counter(), []):
        toks: list = []
        ids: set[int] = set()
        pos = 0
        for start, end, value in chosen:
            atom = Num(value, "".join(tokens[start:end]))
            toks += tokens[pos:start]
            toks.append(atom)
            ids.add(id(atom))
            pos = end
        taken = Counter(v for _, _, v in chosen)
        unread = [(i, e) for i, e, v in spans  # spelled, not read as the result, none of that value left
                  if results[v] <= taken[v] and all(e <= c[0] or i >= c[1] for c in chosen)] + spent
        yield toks + tokens[pos:], frozenset(ids), [("".join(tokens[i:e]), set(tokens[i:e])) for i, e in unread]


def _take(given: Counter, results: Counter, nums: list[Num], atoms: frozenset, numbers: list[int],
          produced: frozenset, unread: _Unread) -> CheckResult | None:
    """Use up the operands of one reading (in place); the reason when one is not available."""
    for lit in nums:
        v = lit.value
        if results[v] > 0:
            results[v] -= 1
        elif id(lit) in atoms:  # a spelled result is never a given number; a literal took the last one
            return CheckResult.wrong("reused_number", f"{lit.text} (an earlier result) is used twice")
        elif given[v] > 0:
            given[v] -= 1
        elif v in numbers or v in produced:
            return CheckResult.wrong("reused_number", f"{lit.text} is used more often than available")
        else:
            for spelling, literals in unread:  # "-7 * -7" with one -7 made: the 7 of the second is no number
                if lit.text in literals:
                    return CheckResult.wrong("reused_number", f"{spelling} (an earlier result) is used twice")
            return CheckResult.wrong("wrong_numbers", f"{lit.text} is not one of {numbers}")
    return None


class _Search:
    """Depth-first search for readings, one per step, that make a derivation of the target."""

    def __init__(self, numbers: list[int], target: int, steps: list[_Step], operators: str, use_all: bool):
        self.numbers, self.target, self.steps = numbers, target, steps
        self.operators, self.use_all = operators, use_all
        self.budget = MAX_READINGS
        self.failure: tuple[int, CheckResult] | None = None  # the first failure at the furthest step reached

    def verdict(self) -> CheckResult:
        if self.run(0, Counter(self.numbers), Counter(), frozenset(), 0):
            return CheckResult.ok()
        return self.failure[1] if self.failure else CheckResult.wrong("unparseable", "no reading of the steps")

    def _fail(self, k: int, why: CheckResult) -> None:
        if self.failure is None or k > self.failure[0]:
            self.failure = (k, why)

    def run(self, k: int, given: Counter, results: Counter, produced: frozenset, value: Value) -> bool:
        """Whether steps k.. can be read as a derivation, with ``given`` / ``results`` unused so far."""
        if k == len(self.steps):
            why = self._finish(given, results, value)
            self._fail(k, why)
            return why.correct
        step, last = self.steps[k], k == len(self.steps) - 1
        if step.stated is None and not last:
            self._fail(k, CheckResult.wrong("bad_step", f"step {k + 1} has no '= result': {step.text!r}"))
            return False
        options = readings(step.lhs, results, produced) if results else iter([(step.lhs, frozenset(), [])])
        for tokens, atoms, unread in options:
            self.budget -= 1
            if self.budget < 0:
                self._fail(k, CheckResult.wrong("too_long", f"more than {MAX_READINGS} step readings"))
                return False
            got = self._read(step, tokens, atoms, given, results, produced, unread)
            if isinstance(got, CheckResult):
                self._fail(k, got)
                continue
            v, left, unused = got
            if not last:
                unused[v] += 1
            if self.run(k + 1, left, unused, produced if last else produced | {v}, v):
                return True
        return False

    def _read(self, step: _Step, tokens: list, atoms: frozenset, given: Counter, results: Counter,
              produced: frozenset, unread: _Unread) -> CheckResult | tuple[Value, Counter, Counter]:
        """One reading of a step: its value and what is left unused after it, or why it does not hold."""
        try:
            rpn, nums = compile_tokens(tokens, allow_neg="-" in self.operators, operators=self.operators)
            left, unused = given.copy(), results.copy()
            refused = _take(left, unused, nums, atoms, self.numbers, produced, unread)
            if refused is not None:
                return refused
            value = eval_rpn(rpn)
        except ArithError as e:
            return CheckResult.wrong(e.reason, e.detail)
        if step.stated is not None and value != step.stated:
            return CheckResult.wrong("bad_step", f"{step.text!r} is false (the left side is {format_value(value)})")
        return value, left, unused

    def _finish(self, given: Counter, results: Counter, value: Value) -> CheckResult:
        if value != self.target:
            return CheckResult.wrong("wrong_value", f"the answer equals {format_value(value)}, not {self.target}")
        if self.use_all and any(given.values()):
            return CheckResult.wrong("unused_number", f"numbers not used: {sorted(given.elements())}")
        if any(results.values()):
            unused = [format_value(v) for v in sorted(results.elements())]
            return CheckResult.wrong("unused_result", f"step results never used: {unused}")
        return CheckResult.ok()


def verify_steps(
    numbers: list[int], target: int, pieces: list[str], operators: str = "+-*/", use_all: bool = True
) -> CheckResult:
    """Verify statements ``expr [= value]`` as a derivation of ``target`` from ``numbers`` (see the module
    docstring; the reasons are countdown's). A single statement is a plain expression.

    >>> verify_steps([57, 22, 15], 64, ["15 - 22 = -7", "57 - (-7) = 64"]).correct
    True
    >>> verify_steps([57, 22, 15], 64, ["15 - 22 = -7", "57 - -7 = 64", "64 - -7 = 71"]).reason
    'reused_number'
    """
    allow_neg = "-" in operators
    steps = []
    try:
        for piece in pieces:
            lhs, rhs = split_statement(piece)
            stated = None if rhs is None else eval_rpn(compile_tokens(rhs, allow_neg=allow_neg, operators=operators)[0])
            steps.append(_Step(piece, lhs, stated))
    except ArithError as e:
        return CheckResult.wrong(e.reason, e.detail)
    return _Search(numbers, target, steps, operators, use_all).verdict()


def spell_result(v: Value, negative: str = "{}", fraction: str = "{}", decimal: bool = False) -> str:
    """How a step writes an earlier result as an operand: ``-7``, ``3/4``, or with ``negative`` / ``fraction``
    formats ``(-7)``, ``(3/4)``; ``decimal`` writes a short terminating fraction as a decimal (``0.75``)."""
    text = format_value(v)
    if isinstance(v, Fraction) and v.denominator != 1:
        if decimal and _terminates(v.denominator) and len(_decimal(v)) <= 12:
            text = _decimal(v)
        return (fraction if v >= 0 else negative).format(text)
    return negative.format(text) if v < 0 else text


def render_steps(node: Node, negative: str = "{}", fraction: str = "{}", decimal: bool = False) -> list[str]:
    """The step form of an expression tree, one ``a op b = v`` per operation in evaluation order, earlier
    results written as :func:`spell_result` does (the format arguments are its).

    >>> from skillfactory.tasks.arith import parse_expression
    >>> render_steps(parse_expression("57 - (15 - 22)"), negative="({})")
    ['15 - 22 = -7', '57 - (-7) = 64']
    """
    steps: list[str] = []

    def walk(n: Node) -> tuple[Value, str]:
        if isinstance(n, Num):
            return n.value, n.text
        if isinstance(n, Neg):
            v, text = walk(n.operand)
            return -v, f"-({text})"
        (a, ta), (b, tb) = walk(n.left), walk(n.right)
        v = apply_op(n.op, a, b)
        steps.append(f"{ta} {n.op} {tb} = {spell_result(v, decimal=decimal)}")
        return v, spell_result(v, negative, fraction, decimal)

    walk(node)
    return steps


def _terminates(d: int) -> bool:
    """Whether 1/d has a finite decimal expansion (d has no prime factors but 2 and 5)."""
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def _decimal(v: Fraction) -> str:
    """A terminating fraction as a decimal string: 3/4 -> 0.75, -5/2 -> -2.5."""
    sign, v = ("-" if v < 0 else ""), abs(v)
    whole, rest = divmod(v.numerator, v.denominator)
    digits = ""
    while rest:
        rest *= 10
        digits += str(rest // v.denominator)
        rest %= v.denominator
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


__all__ = ["MAX_READINGS", "readings", "render_steps", "spell_result", "verify_steps"]
