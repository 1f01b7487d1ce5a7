"""Budget forcing (s1, adapted to SkillFactory's tags): make the model think longer by forcing new attempts.

When the model closes its thinking (``</think>``) while budget is left, the text is cut right before
``</think>`` (the marker and everything after it are dropped), the opening of a new attempt is appended
(``"\\n<sample>\\n"`` by default, configurable) and generation continues from that prefix
(``GenerationRequest(messages, prefix=text_so_far)``). Two kinds of budget:

- a **count** budget B: at most B forced continuations. Once they are spent the model's next ``</think>`` is
  kept and it **finishes on its own** (its ending and ``<answer>`` are its own);
- a **token** budget T: continuations are forced while the kept text has fewer than T tokens, and a round
  may not generate past T. When T runs out in the middle of a thought (the round stopped at the cap with no
  ``</think>``), the answer is **forced**: ``"\\n</think>\\n\\n<answer>"`` is appended and the model writes
  only the answer (``answer_tokens`` at most).

A model that never writes ``</think>`` (a base model without the trace format) is never cut: budget forcing
is a no-op for it, and each result records ``closed_thinking`` so the report can say so.

Rounds run in lockstep over all units (one backend call per round, with every unit still going), so a batch
backend stays busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skillfactory.generation.base import Backend, GenerationRequest, SamplingParams


class BudgetForcingConfig(BaseModel):
    """``budget_forcing:`` in an eval config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    budgets: list[int] = Field(default_factory=lambda: [0, 1, 2, 4])  # forced continuations per answer
    token_budgets: list[int] = Field(default_factory=list)  # thinking-token budgets (optional second curve)
    entries: list[str] = Field(default_factory=list)  # suite entry labels or task names; empty = every entry
    questions: int | None = None  # questions per entry (None = the entry's n)
    samples: int | None = None  # samples per question (None = the entry's samples)
    continuation: str = "\n<sample>\n"  # appended after the cut: the opening of a new attempt
    end_marker: str = "</think>"  # what counts as "the model closed its thinking"
    answer_opening: str = "\n</think>\n\n<answer>"  # appended when a token budget runs out mid-thought
    answer_tokens: int = 64  # tokens allowed for a forced answer
    max_forced: int = 16  # safety cap on continuations under a token budget

    @field_validator("budgets", "token_budgets")
    @classmethod
    def _non_negative(cls, v: list[int]) -> list[int]:
        if any(b < 0 for b in v):
            raise ValueError("budgets must be >= 0 (0 = no forcing)")
        return sorted(set(v))

    @field_validator("continuation", "end_marker")
    @classmethod
    def _non_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v


@dataclass
class ForcedResult:
    """One budget-forced answer: its full text and what forcing did."""

    text: str = ""
    n_tokens: int = 0  # tokens of the kept text (the answer as finally written)
    generated_tokens: int = 0  # every token generated, including the parts cut away
    forced: int = 0  # continuations forced
    forced_answer: bool = False  # the token budget ran out mid-thought and the answer was forced
    closed_thinking: bool = False  # the model wrote the end marker at least once
    finish_reason: str = "stop"
    rounds: list[str] = field(default_factory=list)  # raw text of each generation round (for debugging/tests)


def budget_force(
    backend: Backend,
    messages_list: Sequence[list[dict[str, str]]],
    params: SamplingParams,
    cfg: BudgetForcingConfig,
    *,
    max_forced: int,
    token_budget: int | None = None,
) -> list[ForcedResult]:
    """Generate one budget-forced answer per chat in ``messages_list``.

    ``params.max_new_tokens`` caps each round; ``token_budget`` (optional) caps the kept text's tokens.
    Round ``r`` samples with seed ``params.seed + r``.
    """
    results = [ForcedResult() for _ in messages_list]
    active = list(range(len(messages_list)))
    answering: set[int] = set()  # units whose answer is being forced (their last round)
    rnd = 0
    while active:
        groups: dict[int, list[int]] = {}
        for u in active:
            cap = params.max_new_tokens
            if u in answering:
                cap = cfg.answer_tokens
            elif token_budget is not None:
                cap = max(1, min(cap, token_budget - results[u].n_tokens))
            groups.setdefault(cap, []).append(u)
        still: list[int] = []
        for cap, units in sorted(groups.items()):
            seed = params.seed + rnd
            rp = SamplingParams(n=1, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                                max_new_tokens=cap, stop=params.stop, seed=seed)
            reqs = [GenerationRequest(list(messages_list[u]), prefix=results[u].text) for u in units]
            outs = backend.generate(reqs, rp)
            for u, out in zip(units, outs):
                c = out[0]
                if _step(backend, results[u], c.text, c.n_tokens, c.finish_reason, u in answering, cfg,
                         max_forced, token_budget):
                    if results[u].forced_answer and u not in answering:
                        answering.add(u)
                    still.append(u)
                else:
                    answering.discard(u)
        active = sorted(still)
        rnd += 1
    return results


def _step(backend: Backend, r: ForcedResult, new: str, n_new: int, finish: str, answering: bool,
          cfg: BudgetForcingConfig, max_forced: int, token_budget: int | None) -> bool:
    """Apply one round's text to a unit; True when the unit needs another round."""
    r.rounds.append(new)
    r.generated_tokens += n_new
    r.finish_reason = finish
    if answering:
        r.text += new
        r.n_tokens = backend.count_tokens(r.text)
        return False
    idx = new.find(cfg.end_marker)
    if idx >= 0:
        r.closed_thinking = True
        kept_tokens = backend.count_tokens(r.text + new[:idx])
        budget_left = r.forced < max_forced and (token_budget is None or kept_tokens < token_budget)
        if budget_left:
            r.text += new[:idx] + cfg.continuation
            r.n_tokens = backend.count_tokens(r.text)
            r.forced += 1
            return True
    r.text += new
    r.n_tokens = backend.count_tokens(r.text)
    ran_out = token_budget is not None and r.n_tokens >= token_budget
    if idx < 0 and finish == "length" and ran_out and _inside_thinking(r.text, cfg):
        r.text += cfg.answer_opening
        r.forced_answer = True
        return True
    return False


def _inside_thinking(text: str, cfg: BudgetForcingConfig) -> bool:
    """True when the text is inside a thinking block (its last ``<think>`` is not closed).

    Forcing an answer only makes sense for a model that thinks in the trace format: a base model that never
    opened ``<think>`` is left as it is.
    """
    opener = cfg.end_marker.replace("</", "<", 1)
    return text.rfind(opener) > text.rfind(cfg.end_marker)


__all__ = ["BudgetForcingConfig", "ForcedResult", "budget_force"]
