"""Exact arithmetic over model text: a hand-written tokenizer and recursive-descent parser, evaluated with
exact rationals (``int`` / ``fractions.Fraction``).

Why not ``eval`` or sympy: model text is untrusted. ``eval`` runs code, and sympy's ``parse_expr`` evaluates
its input too (``9**9**9`` hangs, ``__import__(...)`` runs). This parser knows numbers, ``+ - * /``,
parentheses and nothing else, and it bounds everything that could grow: input length, token count, nesting
depth, literal digits and the bit size of every intermediate value. Anything outside the grammar is an
:class:`ArithError` with a reason code, never another exception.

Grammar (``x X × · ⋅ \\times \\cdot`` mean ``*``; ``÷ \\div`` mean ``/``; ``− –`` mean ``-``)::

    statement := expr ( "=" expr )?
    expr      := term ( ("+" | "-") term )*
    term      := unary ( ("*" | "/") unary )*
    unary     := "-" unary | primary            (unary minus only when allowed)
    primary   := NUMBER | "(" expr ")"          (NUMBER: digits, optionally "." digits)

    >>> parse_statement("(3 + 5) x 2 = 16").lhs.op
    '*'
    >>> evaluate(parse_statement("7 / (1 + 2)").lhs)
    Fraction(7, 3)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

MAX_EXPR_CHARS = 1_000  # longer answers are "too_long" before any parsing
MAX_TOKENS = 300  # bounds tree size, so evaluation recursion stays far below Python's limit
MAX_DEPTH = 40  # nesting of parentheses and unary minus
MAX_LITERAL_DIGITS = 30  # a literal longer than this is "too_large"
MAX_BITS = 400  # an intermediate value whose numerator or denominator exceeds this is "too_large"

Value = Union[int, Fraction]

# Symbol -> canonical operator. Longer LaTeX spellings are matched before single characters.
_LATEX = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"))
_CHAR_OPS = {
    "+": "+", "-": "-", "\u2212": "-", "\u2013": "-",
    "*": "*", "x": "*", "X": "*", "\u00d7": "*", "\u00b7": "*", "\u22c5": "*",
    "/": "/", "\u00f7": "/",
}
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}


class ArithError(ValueError):
    """Text that is not a valid bounded arithmetic expression. ``reason`` is a verifier reason code:
    unparseable, bad_operator, too_long, too_deep, too_large, division_by_zero."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Num:
    value: Value
    text: str


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Node


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str  # one of + - * /
    left: Node
    right: Node


Node = Union[Num, Neg, BinOp]


@dataclass(frozen=True, slots=True)
class Statement:
    """``lhs`` alone (a bare expression) or ``lhs = rhs``."""

    lhs: Node
    rhs: Node | None


def tokenize(text: str) -> list[str]:
    """Split text into number literals, canonical operators, parentheses and "="."""
    if len(text) > MAX_EXPR_CHARS:
        raise ArithError("too_long", f"expression longer than {MAX_EXPR_CHARS} characters")
    tokens: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif "0" <= c <= "9":
            j = i
            while j < n and "0" <= text[j] <= "9":
                j += 1
            if j + 1 < n and text[j] == "." and "0" <= text[j + 1] <= "9":
                j += 1
                while j < n and "0" <= text[j] <= "9":
                    j += 1
            if j - i > MAX_LITERAL_DIGITS:
                raise ArithError("too_large", f"a number with more than {MAX_LITERAL_DIGITS} digits")
            tokens.append(text[i:j])
            i = j
        elif c == "*" and text.startswith("**", i) or c == "^":
            raise ArithError("bad_operator", "exponentiation is not allowed")
        elif c in _CHAR_OPS:
            tokens.append(_CHAR_OPS[c])
            i += 1
        elif c in "()=":
            tokens.append(c)
            i += 1
        elif c == "\\":
            for spelling, op in _LATEX:
                if text.startswith(spelling, i):
                    tokens.append(op)
                    i += len(spelling)
                    break
            else:
                raise ArithError("unparseable", f"unknown symbol {text[i:i + 8]!r}")
        else:
            raise ArithError("unparseable", f"unknown symbol {c!r} at position {i}")
        if len(tokens) > MAX_TOKENS:
            raise ArithError("too_long", f"more than {MAX_TOKENS} tokens")
    return tokens


def _literal(tok: str) -> Value:
    if "." in tok:
        return Fraction(tok)
    return int(tok)


class _Parser:
    def __init__(self, tokens: list[str], allow_neg: bool, operators: str):
        self.toks = tokens
        self.i = 0
        self.allow_neg = allow_neg
        self.operators = operators
        self.depth = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def _op(self, tok: str) -> str:
        if tok not in self.operators:
            raise ArithError("bad_operator", f"operator {tok!r} is not allowed (allowed: {' '.join(self.operators)})")
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self._op(self.take())
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.peek() in ("*", "/"):
            op = self._op(self.take())
            node = BinOp(op, node, self.unary())
        return node

    def unary(self) -> Node:
        tok = self.peek()
        if tok == "-":
            if not self.allow_neg:
                raise ArithError("bad_operator", "a leading minus sign (negation) is not allowed")
            self.take()
            return Neg(self._nested(self.unary))
        if tok == "(":
            self.take()
            node = self._nested(self.expr)
            if self.peek() != ")":
                raise ArithError("unparseable", "unbalanced parentheses")
            self.take()
            return node
        if tok is None:
            raise ArithError("unparseable", "expression ends too early")
        if tok[0].isdigit():
            self.take()
            return Num(_literal(tok), tok)
        raise ArithError("unparseable", f"unexpected {tok!r}")

    def _nested(self, fn: Callable[[], Node]) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ArithError("too_deep", f"nesting deeper than {MAX_DEPTH}")
        node = fn()
        self.depth -= 1
        return node


def parse_statement(text: str, *, allow_neg: bool = True, operators: str = "+-*/") -> Statement:
    """Parse ``expr`` or ``expr = expr``. Operators outside ``operators`` are ``bad_operator``."""
    tokens = tokenize(text)
    if not tokens:
        raise ArithError("unparseable", "empty expression")
    p = _Parser(tokens, allow_neg, operators)
    lhs = p.expr()
    rhs = None
    if p.peek() == "=":
        p.take()
        rhs = p.expr()
    if p.peek() is not None:
        raise ArithError("unparseable", f"unexpected {p.peek()!r} after the expression")
    return Statement(lhs, rhs)


def parse_expression(text: str, *, allow_neg: bool = True, operators: str = "+-*/") -> Node:
    """Parse a bare expression (no "=")."""
    st = parse_statement(text, allow_neg=allow_neg, operators=operators)
    if st.rhs is not None:
        raise ArithError("unparseable", "unexpected '='")
    return st.lhs


def literals(node: Node) -> list[Num]:
    """Number literals of a tree, left to right."""
    out: list[Num] = []
    stack: list[Node] = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Num):
            out.append(cur)
        elif isinstance(cur, Neg):
            stack.append(cur.operand)
        else:
            stack.append(cur.right)
            stack.append(cur.left)
    return out


def _bounded(v: Value) -> Value:
    if isinstance(v, Fraction):
        if v.denominator == 1:
            v = v.numerator
        elif v.numerator.bit_length() > MAX_BITS or v.denominator.bit_length() > MAX_BITS:
            raise ArithError("too_large", "an intermediate value is too large")
    if isinstance(v, int) and v.bit_length() > MAX_BITS:
        raise ArithError("too_large", "an intermediate value is too large")
    return v


def apply_op(op: str, a: Value, b: Value) -> Value:
    """Exact ``a op b``; integers stay integers when the result is whole."""
    if op == "+":
        return _bounded(a + b)
    if op == "-":
        return _bounded(a - b)
    if op == "*":
        return _bounded(a * b)
    if op == "/":
        if b == 0:
            raise ArithError("division_by_zero", "division by zero")
        if isinstance(a, int) and isinstance(b, int) and a % b == 0:
            return a // b
        return _bounded(Fraction(a) / b)
    raise ArithError("bad_operator", f"unknown operator {op!r}")


def evaluate(node: Node) -> Value:
    """Exact value of a tree (its size is bounded by the parser's token cap)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Neg):
        return _bounded(-evaluate(node.operand))
    return apply_op(node.op, evaluate(node.left), evaluate(node.right))


def format_expr(node: Node, spaced: bool = True) -> str:
    """Render a tree with the fewest parentheses that keep its meaning: ``(3 + 5) * 2``."""
    if isinstance(node, Num):
        return node.text
    if isinstance(node, Neg):
        inner = format_expr(node.operand, spaced)
        return f"-({inner})" if not isinstance(node.operand, Num) else f"-{inner}"
    prec = _PREC[node.op]
    left = format_expr(node.left, spaced)
    right = format_expr(node.right, spaced)
    if isinstance(node.left, BinOp) and _PREC[node.left.op] < prec:
        left = f"({left})"
    if isinstance(node.right, BinOp) and (
        _PREC[node.right.op] < prec or (_PREC[node.right.op] == prec and node.op in "-/")
    ):
        right = f"({right})"
    if isinstance(node.right, Neg):
        right = f"({right})"
    sep = " " if spaced else ""
    return f"{left}{sep}{node.op}{sep}{right}"


def format_value(v: Value) -> str:
    """``7`` or ``7/3`` (the form a step's result is written in)."""
    if isinstance(v, Fraction) and v.denominator != 1:
        return f"{v.numerator}/{v.denominator}"
    return str(int(v))


__all__ = [
    "MAX_EXPR_CHARS", "ArithError", "BinOp", "Neg", "Node", "Num", "Statement", "Value", "apply_op", "evaluate",
    "format_expr", "format_value", "literals", "parse_expression", "parse_statement", "tokenize",
]
