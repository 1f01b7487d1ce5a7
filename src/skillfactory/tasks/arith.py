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

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Union

MAX_EXPR_CHARS = 1_000  # longer answers are "too_long" before any parsing
MAX_TOKENS = 300  # bounds tree size, so evaluation recursion stays far below Python's limit
MAX_DEPTH = 40  # nesting of parentheses and unary minus
MAX_LITERAL_DIGITS = 30  # a literal longer than this is "too_large"
MAX_BITS = 400  # an intermediate value whose numerator or denominator exceeds this is "too_large"

Value = Union[int, Fraction]
_SMALL = 1 << 62  # integer results below this need no size check

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


@dataclass(slots=True)
class Num:
    value: Value
    text: str


@dataclass(slots=True)
class Neg:
    operand: Node


@dataclass(slots=True)
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
    lhs_numbers: tuple[Num, ...] = ()  # the literals of lhs, left to right


_TOKEN = re.compile(r"[0-9]+(?:\.[0-9]+)?|\*\*|\\times|\\cdot|\\div|\S")
_PLAIN = re.compile(r"[0-9+\-/() =]*(?:\*(?!\*)[0-9+\-/() =]*)*")  # no "**", no "." or other symbols
_LONG_NUMBER = re.compile(r"[0-9]{%d}" % (MAX_LITERAL_DIGITS + 1))
_TOKEN_MAP = {**_CHAR_OPS, **dict(_LATEX), "(": "(", ")": ")", "=": "="}


def tokenize(text: str) -> list[str]:
    """Split text into number literals, canonical operators, parentheses and "="."""
    if len(text) > MAX_EXPR_CHARS:
        raise ArithError("too_long", f"expression longer than {MAX_EXPR_CHARS} characters")
    raw = _TOKEN.findall(text)
    if len(raw) > MAX_TOKENS:
        raise ArithError("too_long", f"more than {MAX_TOKENS} tokens")
    if _PLAIN.fullmatch(text) and not _LONG_NUMBER.search(text):
        return raw  # only digits, + - * / ( ) = and spaces: every token is canonical already
    tokens: list[str] = []
    for tok in raw:
        mapped = _TOKEN_MAP.get(tok)
        if mapped is not None:
            tokens.append(mapped)
        elif "0" <= tok[0] <= "9":
            if len(tok) > MAX_LITERAL_DIGITS:
                raise ArithError("too_large", f"a number with more than {MAX_LITERAL_DIGITS} digits")
            tokens.append(tok)
        elif tok in ("**", "^"):
            raise ArithError("bad_operator", "exponentiation is not allowed")
        else:
            raise ArithError("unparseable", f"unknown symbol {tok!r}")
    return tokens


_PREC_RPN = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3}
RPN = list  # items: Num (a literal) or an operator: "+", "-", "*", "/", "neg"


def _to_rpn(toks: list[str], i: int, allow_neg: bool, operators: str) -> tuple[RPN, list[Num], int]:
    """Shunting-yard from ``toks[i]`` to the end or an "=": (reverse Polish items, literals in order, stop).

    One iterative pass (no recursion, so nesting is bounded by ``MAX_DEPTH`` alone); the grammar is the one
    in the module docstring.
    """
    out: RPN = []
    nums: list[Num] = []
    ops: list[str] = []  # operator stack: operators, "neg" and "("
    depth = 0
    n = len(toks)
    expect_operand = True
    while i < n:
        tok = toks[i]
        if type(tok) is Num:  # a value read as one operand (an earlier step's result; see tasks.steps)
            if not expect_operand:
                raise ArithError("unparseable", f"unexpected {tok.text!r} after the expression")
            out.append(tok)
            nums.append(tok)
            expect_operand = False
        elif expect_operand:
            if "0" <= tok[0] <= "9":
                num = Num(Fraction(tok) if "." in tok else int(tok), tok)
                out.append(num)
                nums.append(num)
                expect_operand = False
            elif tok == "(" or tok == "-":
                if tok == "-" and not allow_neg:
                    raise ArithError("bad_operator", "a leading minus sign (negation) is not allowed")
                depth += 1
                if depth > MAX_DEPTH:
                    raise ArithError("too_deep", f"nesting deeper than {MAX_DEPTH}")
                ops.append(tok if tok == "(" else "neg")
            else:
                raise ArithError("unparseable", f"unexpected {tok!r}")
        elif tok in _PREC:
            if tok not in operators:
                raise ArithError("bad_operator", f"operator {tok!r} is not allowed (allowed: {' '.join(operators)})")
            prec = _PREC[tok]
            while ops and ops[-1] != "(" and _PREC_RPN[ops[-1]] >= prec:
                top = ops.pop()
                depth -= top == "neg"
                out.append(top)
            ops.append(tok)
            expect_operand = True
        elif tok == ")":
            while ops and ops[-1] != "(":
                top = ops.pop()
                depth -= top == "neg"
                out.append(top)
            if not ops:
                raise ArithError("unparseable", "unexpected ')' after the expression")
            ops.pop()
            depth -= 1
        elif tok == "=":
            break
        else:
            raise ArithError("unparseable", f"unexpected {tok!r} after the expression")
        i += 1
    if expect_operand:
        raise ArithError("unparseable", "expression ends too early" if i >= n or not out else f"unexpected {toks[i]!r}")
    while ops:
        top = ops.pop()
        if top == "(":
            raise ArithError("unparseable", "unbalanced parentheses")
        out.append(top)
    return out, nums, i


def split_statement(text: str) -> tuple[list, list | None]:
    """Tokens of ``expr`` or ``expr = expr``: (lhs tokens, rhs tokens or None). More than one "=" is unparseable."""
    tokens = tokenize(text)
    if not tokens:
        raise ArithError("unparseable", "empty expression")
    if "=" not in tokens:
        return tokens, None
    i = tokens.index("=")
    if "=" in tokens[i + 1:]:
        raise ArithError("unparseable", "unexpected '=' after the expression")
    return tokens[:i], tokens[i + 1:]


def compile_tokens(tokens: list, *, allow_neg: bool = True, operators: str = "+-*/") -> tuple[RPN, list[Num]]:
    """One expression's tokens (strings from :func:`tokenize`, or :class:`Num` items read as one operand each)
    -> (reverse Polish, literals in order)."""
    if not tokens:
        raise ArithError("unparseable", "empty expression")
    rpn, nums, i = _to_rpn(tokens, 0, allow_neg, operators)
    if i < len(tokens):
        raise ArithError("unparseable", "unexpected '='")
    return rpn, nums


def compile_statement(text: str, *, allow_neg: bool = True, operators: str = "+-*/") -> tuple[RPN, list[Num], RPN | None]:
    """``expr`` or ``expr = expr`` -> (lhs in reverse Polish, lhs literals in order, rhs or None).

    The fast path of verification: no tree is built. :func:`parse_statement` gives the tree.
    """
    tokens = tokenize(text)
    if not tokens:
        raise ArithError("unparseable", "empty expression")
    lhs, nums, i = _to_rpn(tokens, 0, allow_neg, operators)
    rhs = None
    if i < len(tokens):  # stopped at "="
        rhs, _, j = _to_rpn(tokens, i + 1, allow_neg, operators)
        if j < len(tokens):
            raise ArithError("unparseable", "unexpected '=' after the expression")
    return lhs, nums, rhs


def eval_rpn(rpn: RPN) -> Value:
    """Exact value of a reverse Polish expression from :func:`compile_statement`."""
    stack: list[Value] = []
    for item in rpn:
        if type(item) is Num:
            stack.append(item.value)
        elif item == "neg":
            stack.append(-stack.pop())
        else:
            b = stack.pop()
            a = stack.pop()
            if type(a) is int and type(b) is int and item != "/":  # the common case, kept cheap
                v = a + b if item == "+" else a - b if item == "-" else a * b
                if -_SMALL < v < _SMALL:
                    stack.append(v)
                    continue
            stack.append(apply_op(item, a, b))  # type: ignore[arg-type]
    return stack[-1]


def _rpn_to_tree(rpn: RPN) -> Node:
    stack: list[Node] = []
    for item in rpn:
        if type(item) is Num:
            stack.append(item)
        elif item == "neg":
            stack.append(Neg(stack.pop()))
        else:
            b = stack.pop()
            stack.append(BinOp(item, stack.pop(), b))  # type: ignore[arg-type]
    return stack[-1]


def parse_statement(text: str, *, allow_neg: bool = True, operators: str = "+-*/") -> Statement:
    """Parse ``expr`` or ``expr = expr`` into trees. Operators outside ``operators`` are ``bad_operator``."""
    lhs, nums, rhs = compile_statement(text, allow_neg=allow_neg, operators=operators)
    return Statement(_rpn_to_tree(lhs), None if rhs is None else _rpn_to_tree(rhs), tuple(nums))


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
    kind = type(node)
    if kind is Num:
        return node.value  # type: ignore[union-attr]
    if kind is Neg:
        return -evaluate(node.operand)  # type: ignore[union-attr]
    a, b = evaluate(node.left), evaluate(node.right)  # type: ignore[union-attr]
    op = node.op  # type: ignore[union-attr]
    if type(a) is int and type(b) is int and op != "/":  # the common case, kept cheap
        v = a + b if op == "+" else a - b if op == "-" else a * b
        if -_SMALL < v < _SMALL:
            return v
    return apply_op(op, a, b)


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
    "MAX_EXPR_CHARS", "RPN", "ArithError", "BinOp", "Neg", "Node", "Num", "Statement", "Value", "apply_op",
    "compile_statement", "compile_tokens", "eval_rpn", "evaluate", "format_expr", "format_value", "literals",
    "parse_expression", "parse_statement", "split_statement", "tokenize",
]
