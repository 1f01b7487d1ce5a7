"""Trace formats: which of a question's attempts go into one trace, in what order, with what glue.

A format is a selection function ``(pool, rng, n) -> Selection | reason`` over the usable attempts of one
question; :func:`render` turns a selection into a trace's assistant turn. A question that cannot give
a format returns a short reason (``no_correct_attempt``, ``no_incorrect_attempt``, ...) that the builder
counts - never an exception (the published builder crashed on a question without an incorrect attempt).

Randomness: every choice comes from the ``rng`` handed in, which the builder seeds per (seed, question,
format, repeat, n) - so a trace does not depend on which other questions or formats are built with it.

Attempt counts: ``n`` counts ``<sample>`` blocks, so it never exceeds ``max_responses``; in ``*C*IC`` the
restated correct attempt is one of them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import NamedTuple

from skillfactory.prompting import REFLECT_CLOSE, REFLECT_OPEN, SAMPLE_CLOSE, SAMPLE_OPEN, THINK_CLOSE, THINK_OPEN
from skillfactory.records import sample_id
from skillfactory.traces import phrases

#: Every format, in the order they are documented. ``*C_full`` and ``no_reflection`` give one trace per n.
FORMATS: tuple[str, ...] = ("0C", "*C", "*C_full", "*C*IC", "*CC", "random", "no_reflection")
#: Formats whose final answer is a correct attempt's (the invariant tests check that it verifies).
CORRECT_FORMATS: frozenset[str] = frozenset({"0C", "*C", "*C_full", "*C*IC", "*CC", "no_reflection"})
#: Formats that give one trace for every n in 1..max_responses.
FULL_FORMATS: frozenset[str] = frozenset({"*C_full", "no_reflection"})
#: Fewest <sample> blocks a format needs; max_responses must allow it.
MIN_BLOCKS: dict[str, int] = {"0C": 1, "*C": 1, "*C_full": 1, "*C*IC": 3, "*CC": 2, "random": 1, "no_reflection": 1}
#: Tags that must not appear inside an attempt or reflection: they would break the trace's structure.
STRUCTURE_TAGS: tuple[str, ...] = (THINK_OPEN, THINK_CLOSE, SAMPLE_OPEN, SAMPLE_CLOSE, REFLECT_OPEN, REFLECT_CLOSE)


class Attempt(NamedTuple):
    """One usable attempt: verified, with at least one kept reflection whose truth matches.

    Texts are not held here but referenced (``text_ref``, ``refl_refs``) and fetched from the source when a
    trace is rendered, so 640k attempts fit in memory. ``refl_index[i]`` is the reflection's index (its id is
    ``{sample_id}|r{index}``) and ``refl_refs[i]`` where its text is. A NamedTuple, not a frozen dataclass:
    it is built 640k times at the published scale and is 5x cheaper to create.
    """

    question_id: str
    variant: str
    index: int
    correct: bool
    answer: str | None
    text_ref: int
    refl_index: tuple[int, ...]
    refl_refs: Sequence[int]  # a tuple, or a range where the texts are consecutive (the raw reader's)

    @property
    def sample_id(self) -> str:
        return sample_id(self.question_id, self.variant, self.index)

    def reflection_id(self, k: int) -> str:
        return f"{self.sample_id}|r{self.refl_index[k]}"


class Pool:
    """The usable attempts of one question, sorted by (variant, index), with the indexes the selections need.

    ``ordered=True``: the attempts come sorted already (the raw reader sorts them all at once in numpy), so
    they are not sorted again; a question's pool is made once per build, 30,000 times at the published scale.
    """

    __slots__ = ("question_id", "attempts", "correct", "incorrect", "_by_variant")

    def __init__(self, question_id: str, attempts: list[Attempt], *, ordered: bool = False):
        self.question_id = question_id
        self.attempts = attempts if ordered else sorted(attempts, key=_variant_index)
        self.correct: list[Attempt] = [a for a in self.attempts if a.correct]
        self.incorrect: list[Attempt] = [a for a in self.attempts if not a.correct]
        self._by_variant: dict[str, list[Attempt]] | None = None

    @property
    def by_variant(self) -> dict[str, list[Attempt]]:
        """Variant -> its attempts, in order; made when first asked (only distinct-variant selections and
        variable-length formats ask, so the ``*C_full`` build never pays for it)."""
        if self._by_variant is None:
            by_variant: dict[str, list[Attempt]] = {}
            for a in self.attempts:
                same = by_variant.get(a.variant)
                if same is None:
                    by_variant[a.variant] = [a]
                else:
                    same.append(a)
            self._by_variant = by_variant
        return self._by_variant

    def __repr__(self) -> str:
        return f"Pool({self.question_id!r}, {len(self.attempts)} attempts, {len(self.correct)} correct)"

    def variants_with(self, correct: bool) -> list[str]:
        return [v for v, atts in self.by_variant.items() if any(a.correct == correct for a in atts)]


def _variant_index(a: Attempt) -> tuple[str, int]:
    return a.variant, a.index


class Selection(NamedTuple):
    """The attempts of one trace in order (a restated attempt appears twice) and its special glue. (Tuples,
    like :class:`Attempt`: made once per trace, a frozen dataclass costs several times as much.)"""

    attempts: list[Attempt]
    backtrack: bool = False  # the glue before the last attempt is a backtrack phrase (``*C*IC``)
    confirm: bool = False  # a confirm phrase follows the last attempt (``*CC``)


Select = Callable[[Pool, random.Random, int, bool], "Selection | str"]


# ---- choosing attempts ------------------------------------------------------------------------------------------
def _capacity(pool: Pool, distinct: bool) -> int:
    """Most attempts one trace can hold (distinct variants: one per variant)."""
    return len(pool.by_variant) if distinct else len(pool.attempts)


def _shortfall(pool: Pool, n: int, distinct: bool) -> str | None:
    if len(pool.attempts) < n:
        return "too_few_valid_attempts"
    if distinct and len(pool.by_variant) < n:
        return "too_few_distinct_variants"
    return None


def _fill(rng: random.Random, pool: Pool, k: int, fixed: Sequence[Attempt], distinct: bool) -> list[Attempt]:
    """``k`` more attempts, none of ``fixed``, in random order (callers checked that enough exist)."""
    if k <= 0:
        return []
    if distinct:
        used = {a.variant for a in fixed}
        variants = rng.sample([v for v in pool.by_variant if v not in used], k)
        return [rng.choice(pool.by_variant[v]) for v in variants]
    if len(fixed) == 1:  # the common case (*C, *C_full): no set
        one = fixed[0]
        return rng.sample([a for a in pool.attempts if a is not one], k)
    taken = {id(a) for a in fixed}
    return rng.sample([a for a in pool.attempts if id(a) not in taken], k)


def _pick_distinct(rng: random.Random, groups: Sequence[Sequence[Attempt]], distinct: bool) -> list[Attempt] | None:
    """One attempt from each group (distinct attempts; distinct variants when asked), or None if impossible.

    With distinct variants, the variant combination is drawn first among all feasible ones, so a greedy
    first pick can never block a later group.
    """
    if distinct:
        by_var = [sorted({a.variant for a in g}) for g in groups]
        combos: list[tuple[str, ...]] = [()]
        for variants in by_var:
            combos = [c + (v,) for c in combos for v in variants if v not in c]
        if not combos:
            return None
        combo = rng.choice(combos)
        return [rng.choice([a for a in g if a.variant == v]) for g, v in zip(groups, combo)]
    chosen: list[Attempt] = []
    for g in groups:
        left = [a for a in g if all(a is not c for c in chosen)]
        if not left:
            return None
        chosen.append(rng.choice(left))
    return chosen


def select_star_c(pool: Pool, rng: random.Random, n: int, distinct: bool) -> Selection | str:
    """``*C`` with exactly ``n`` attempts: the last correct, the others any usable attempts."""
    if not pool.correct:
        return "no_correct_attempt"
    short = _shortfall(pool, n, distinct)
    if short:
        return short
    last = rng.choice(pool.correct)
    return Selection(_fill(rng, pool, n - 1, [last], distinct) + [last])


def select_cc(pool: Pool, rng: random.Random, n: int, distinct: bool) -> Selection | str:
    """``*CC`` with ``n`` >= 2 attempts: the last two correct, then a confirm phrase."""
    if not pool.correct:
        return "no_correct_attempt"
    if len(pool.correct) < 2:
        return "too_few_correct_attempts"
    short = _shortfall(pool, n, distinct)
    if short:
        return short
    pair = _pick_distinct(rng, [pool.correct, pool.correct], distinct)
    if pair is None:
        return "too_few_distinct_variants"
    return Selection(_fill(rng, pool, n - 2, pair, distinct) + pair, confirm=True)


def select_backtrack(pool: Pool, rng: random.Random, n: int, distinct: bool) -> Selection | str:
    """``*C*IC`` with ``n`` >= 3 blocks: a correct attempt somewhere before a wrong last attempt, then a
    backtrack phrase and the earlier correct attempt restated (``n - 1`` different attempts)."""
    if not pool.correct:
        return "no_correct_attempt"
    if not pool.incorrect:
        return "no_incorrect_attempt"
    short = _shortfall(pool, n - 1, distinct)
    if short:
        return short
    pair = _pick_distinct(rng, [pool.correct, pool.incorrect], distinct)
    if pair is None:
        return "too_few_distinct_variants"
    good, bad = pair
    earlier = _fill(rng, pool, n - 3, pair, distinct) + [good]
    rng.shuffle(earlier)
    return Selection(earlier + [bad, good], backtrack=True)


def select_random(pool: Pool, rng: random.Random, n: int, distinct: bool) -> Selection | str:
    """Ablation: ``n`` usable attempts chosen ignoring correctness (the final answer may be wrong).

    The question still needs a correct attempt, so the ablation draws from the same questions as ``*C``.
    """
    if not pool.correct:
        return "no_correct_attempt"
    short = _shortfall(pool, n, distinct)
    if short:
        return short
    return Selection(_fill(rng, pool, n, [], distinct))


_SELECT: dict[str, Select] = {
    "0C": select_star_c,
    "*C": select_star_c,
    "*C_full": select_star_c,
    "no_reflection": select_star_c,
    "*CC": select_cc,
    "*C*IC": select_backtrack,
    "random": select_random,
}


def choose_n(fmt: str, pool: Pool, rng: random.Random, max_responses: int, distinct: bool) -> int:
    """The number of blocks of a variable-length format: uniform over what the question can fill.

    Drawing n only up to the question's capacity (instead of skipping it when a large n is drawn) keeps
    questions with few usable attempts in the data; when even the minimum does not fit, the minimum is
    returned and the selection reports why it fails.
    """
    if fmt == "0C":
        return 1
    lo = MIN_BLOCKS[fmt]
    extra = 1 if fmt == "*C*IC" else 0  # the restated block is not a new attempt
    hi = min(max_responses, _capacity(pool, distinct) + extra)
    return rng.randint(lo, hi) if hi >= lo else lo


def select(fmt: str, pool: Pool, rng: random.Random, n: int, distinct: bool) -> Selection | str:
    """Dispatch to the format's selection function."""
    return _SELECT[fmt](pool, rng, n, distinct)


# ---- rendering ----------------------------------------------------------------------------------------------
class Rendered(NamedTuple):
    assistant: str
    sample_ids: list[str]
    reflection_ids: list[str]
    final: str
    final_correct: bool


def render(
    sel: Selection,
    rng: random.Random,
    sample_text: Callable[[int], str],
    reflection_text: Callable[[int], str],
    *,
    with_reflection: bool = True,
    pool_size: int | None = None,
) -> Rendered:
    """The trace's assistant turn for a selection.

    Glue after a non-final block is chosen by that attempt's truth (what its reflection just said). Without
    reflections (``no_reflection``) the glue is a generic phrase: a glue saying "that was wrong" would carry
    the verification signal the ablation removes. The attempts are the same as in the ``*C_full`` trace with
    the same seed (the builder seeds both alike). ``pool_size``: glue from each pool's first phrases only.
    """
    atts = sel.attempts
    chosen = [rng.randrange(len(a.refl_index)) for a in atts]
    glue: list[str] = []
    for i, a in enumerate(atts[:-1]):
        if sel.backtrack and i == len(atts) - 2:
            glue.append(phrases.pick(rng, "backtrack", pool_size))
        elif with_reflection:
            glue.append(phrases.glue_after(rng, a.correct, pool_size))
        else:  # no verdict shown, so no glue may reveal one either (as in the published ablation)
            glue.append(phrases.pick(rng, "generic", pool_size))
    tail = phrases.pick(rng, "confirm", pool_size) if sel.confirm else None
    ending = phrases.pick(rng, "ending", pool_size)

    lines = [THINK_OPEN]
    glue.append(tail)  # what follows the last block: the confirm phrase, or nothing
    for a, k, after in zip(atts, chosen, glue):
        lines += (SAMPLE_OPEN, sample_text(a.text_ref).strip(), SAMPLE_CLOSE)
        if with_reflection:
            lines += (REFLECT_OPEN, reflection_text(a.refl_refs[k]).strip(), REFLECT_CLOSE)
        if after is not None:
            lines.append(after)
    last = atts[-1]
    final = last.answer if last.answer is not None else ""
    # one join for the whole turn (it is copied once): "...</think>\n\n{ending}\n\n<answer>\n{final}\n</answer>"
    lines += (THINK_CLOSE, "", ending, "", "<answer>", final, "</answer>")
    sample_ids = [sample_id(a.question_id, a.variant, a.index) for a in atts]
    refl_ids = [f"{sid}|r{a.refl_index[k]}" for sid, a, k in zip(sample_ids, atts, chosen)] if with_reflection else []
    return Rendered("\n".join(lines), sample_ids, refl_ids, final, last.correct)
