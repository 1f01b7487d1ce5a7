"""Peel presentation off an extracted answer: markdown emphasis, LaTeX math delimiters, ``\\boxed{}``.

Why: instruct models dress a right answer up - ``**177546**``, ``$\\boxed{177546}$``, ``\\(57 + 22 - 15\\)``,
``177546.`` - and a verifier that parses the bare text marks it wrong, in reward and in eval alike. Every task
gets this for free: :meth:`Task.check` applies :func:`normalize_answer` to the extracted ``<answer>`` content
before the task's own ``check_answer``.

Only a wrapper around the *whole* answer is removed, and only when it is balanced, so nothing is guessed:
``$177546`` (unbalanced), ``**1** or **2**`` (two bold spans) and ``The answer is \\boxed{5}`` stay as they are
and are judged by the task's own strict parser. One layer comes off per round (at most :data:`MAX_ROUNDS`),
so nested wrappers work (``**\\boxed{5}**``, ``$\\boxed{5}$.``) and the cost stays linear in the answer. The
normaliser never evaluates anything; safety is still the task parser's job (``**9**9**9**`` becomes
``9**9**9``, which every parser rejects).

Layers removed, outermost first:

* surrounding whitespace, and one trailing period (``177546.``; not ``1.5`` and not ``..``);
* markdown emphasis and code: ``**x**``, ``__x__``, ``*x*``, ``_x_``, `` `x` ``, ````` ```x``` `````, where x
  does not start or end with a space (markdown's own rule: ``* * *`` is not emphasis) and does not contain the
  marker. ``__x__`` with x an identifier (``__import__``) is a Python dunder name, not bold, and stays;
* LaTeX math: ``$x$``, ``$$x$$``, ``\\(x\\)``, ``\\[x\\]``;
* a command wrapping everything, braces matched: ``\\boxed{x}``, ``\\fbox{x}``, ``\\text{x}``, ``\\textbf{x}``,
  ``\\mathrm{x}``, ``\\mathbf{x}``.

>>> normalize_answer("$\\\\boxed{177546}$.")
'177546'
>>> normalize_answer("**57 + 22 - 15**")
'57 + 22 - 15'
>>> normalize_answer("$177546")
'$177546'
"""

from __future__ import annotations

import re

MAX_ROUNDS = 8  # wrapper layers removed at most; real answers use 1-3 ($\boxed{..}$ + a period)

#: (opening, closing) pairs that wrap a whole answer; longer markers first, so ``**`` is not read as ``*``.
_DELIMITERS = (("$$", "$$"), ("\\(", "\\)"), ("\\[", "\\]"), ("$", "$"))
_EMPHASIS = ("```", "**", "__", "`", "*", "_")
_COMMAND = re.compile(r"\\(?:boxed|fbox|text|textbf|textrm|mathrm|mathbf)\s*\{")
_TRAILING_PERIOD = re.compile(r"(.*[^.\s])\s*\.", re.DOTALL)


def _braced(text: str) -> str | None:
    """The argument of a command that wraps all of ``text`` (``\\boxed{x}`` -> ``x``), braces matched, or None."""
    m = _COMMAND.match(text)
    if m is None or not text.endswith("}"):
        return None
    depth = 0
    for i in range(m.end() - 1, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:  # the opening brace closes here: it must be the last character
                inner = text[m.end():i]
                return inner if i == len(text) - 1 and inner.strip() else None
    return None


def _emphasised(text: str) -> str | None:
    """The inside of markdown emphasis or code wrapping all of ``text``, or None."""
    for mark in _EMPHASIS:
        n = len(mark)
        if len(text) > 2 * n and text.startswith(mark) and text.endswith(mark):
            inner = text[n:-n]
            if inner != inner.strip() or mark in inner:
                return None  # "* * *" or "**a** or **b**": not one emphasised span
            if mark == "__" and inner.isidentifier():
                return None  # __import__ is code, not bold
            return inner
    return None


def _delimited(text: str) -> str | None:
    """The inside of LaTeX math delimiters wrapping all of ``text``, or None."""
    for left, right in _DELIMITERS:
        n, m = len(left), len(right)
        if len(text) > n + m and text.startswith(left) and text.endswith(right):
            inner = text[n:-m]
            if left in inner or right in inner:
                return None  # "$1$ + $2$": two math spans, not one
            return inner
    return None


def peel_once(text: str) -> str:
    """``text`` with its outermost wrapper removed (or unchanged when it has none)."""
    text = text.strip()
    m = _TRAILING_PERIOD.fullmatch(text)
    if m is not None:
        return m.group(1)
    for peel in (_emphasised, _delimited, _braced):
        inner = peel(text)
        if inner is not None:
            return inner.strip()
    return text


def normalize_answer(text: str) -> str:
    """The answer with presentation wrappers removed (see the module docstring); plain answers pass unchanged."""
    for _ in range(MAX_ROUNDS):
        peeled = peel_once(text)
        if peeled == text:
            return peeled
        text = peeled
    return text.strip()


__all__ = ["MAX_ROUNDS", "normalize_answer", "peel_once"]
