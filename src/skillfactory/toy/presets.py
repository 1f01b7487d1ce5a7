"""Presets of the toy base model: corpus mix, noisy-solver rates, architecture and pretraining budget.

``micro`` is for tests and the CI smoke run (builds in under a minute, quality barely matters). ``tiny`` is the
quickstart's base model: its task ranges and size were chosen by measurement (figures in the README) so that it
sometimes solves countdown with 3 numbers, often multiplies 2-digit numbers right (column by column), checks
its answers with mostly valid verdicts, and never chains attempts.

Countdown of ``tiny`` (also what the quickstart recipe trains and evaluates on): numbers 1-9, operators
``+ -``, each number used exactly once, targets 1-30 (``TINY_COUNTDOWN``); ``micro`` uses numbers 1-4. These are
passed to ``get_task("countdown", num_args=k, **countdown_params)``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skillfactory.errors import SkillFactoryError
from skillfactory.toy.model import ArchConfig


class ToyPresetError(SkillFactoryError, ValueError):
    """Unknown preset name."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CorpusConfig(_Frozen):
    """What the synthetic pretraining corpus contains."""

    n_conversations: int = Field(20_000, ge=1)  # solve + reflect conversations, each seen once
    solve_share: float = Field(0.6, ge=0, le=1)  # the rest are reflect conversations
    task_weights: dict[str, float] = {"countdown": 0.6, "multiplication": 0.4}
    countdown_params: dict = {"min_number": 1, "max_number": 20, "operators": "+-"}  # task params besides num_args
    countdown_sizes: dict[int, float] = {2: 0.2, 3: 0.6, 4: 0.2}  # num_args -> weight
    countdown_p_correct: float = Field(0.5, ge=0, le=1)  # noisy solver: share of right attempts when solvable
    # the share of right attempts shown in reflect conversations, both tasks (None: each task's p_correct). A base
    # model's checks see its own attempts, mostly wrong ones; checks trained on mostly right attempts lean to
    # "Correct" (measured: 15% agreement on its own wrong attempts with 0.8).
    reflect_p_correct: float | None = Field(None, ge=0, le=1)
    # the same for multiplication alone (None: reflect_p_correct): how often a model's own products are right
    # depends on how it multiplies (tiny: ~1% with steps "split", ~70% with "columns")
    multiplication_reflect_p_correct: float | None = Field(None, ge=0, le=1)
    # kinds of wrong countdown attempts (attempts.COUNTDOWN_ERRORS -> weight; None: all alike), in solve and in
    # reflect conversations. A solve answer that misreads a number or slips teaches the model to copy and add
    # unreliably; a check must still see such attempts to learn to catch them.
    countdown_errors: dict[str, float] | None = None
    reflect_countdown_errors: dict[str, float] | None = None
    multiplication_sizes: dict[int, float] = {2: 0.7, 3: 0.3}  # digits -> weight
    multiplication_p_correct: float = Field(0.7, ge=0, le=1)
    # share of multiplication attempts that keep the question's factor order (the rest: either order at random)
    multiplication_in_order: float = Field(0.0, ge=0, le=1)
    # how attempts, checks and drills multiply: "split" one factor by its digits, each partial product whole
    # ("37 x 20 = 740"); "digits" each partial product through single-digit facts ("37 x 20 = 30 x 20 + 7 x 20 =
    # 600 + 140 = 740"); "columns" long multiplication column by column (toy/columns.py), where every value
    # written is a single-digit fact or a small sum. A tiny model learns neither a 2-digit times 1-digit product
    # nor "6300 + 350 = 6650" in one go from a few hundred thousand tokens.
    multiplication_steps: Literal["split", "digits", "columns"] = "split"
    verdict_flip: float = Field(0.12, ge=0, le=0.5)  # share of reflections with a mistaken verdict
    # checks write each comparison after both of its sides (checks.countdown_check(compare_last=...))
    compare_last: bool = False
    # share of countdown attempts that keep the question's order of numbers when a chain in that order fits
    countdown_in_order: float = Field(0.0, ge=0, le=1)
    # share of "drill" conversations: lines of the step arithmetic the attempts use ("12 + 7 = 19",
    # "47 x 30 = 1410"), no question, no attempt. Dense in what a tiny model finds hardest, cheap in tokens.
    drill_share: float = Field(0.0, ge=0, le=1)
    drill_lines: int = Field(12, ge=1, le=64)
    # drill conversations trained on *before* the rest (a curriculum): the step arithmetic first, on its own.
    # Measured: a tiny model learns "a + b = c" only after ~3000 updates of drills alone; mixed into the
    # corpus at the same budget it never does.
    warmup_drills: int = Field(0, ge=0)
    # "copy" conversations: a question's numbers restated in the attempts' own words ("It uses 6, 5 and 3.",
    # "78 x 96 = 78 x 90 + 78 x 6"). A tiny model that must find the question's numbers inside long prompts
    # learns it far slower than from these short, dense lines. ``copy_share`` of the mixed corpus; ``warmup_copies``
    # more lead the warm-up together with the warm-up drills.
    copy_share: float = Field(0.0, ge=0, le=1)
    warmup_copies: int = Field(0, ge=0)

    @field_validator("countdown_errors", "reflect_countdown_errors")
    @classmethod
    def _known_errors(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        from skillfactory.toy.attempts import COUNTDOWN_ERRORS

        if v is not None:
            unknown = set(v) - set(COUNTDOWN_ERRORS)
            if unknown or not any(w > 0 for w in v.values()) or any(w < 0 for w in v.values()):
                raise ValueError(f"countdown error weights: use non-negative weights over {', '.join(COUNTDOWN_ERRORS)} "
                                 f"(at least one > 0), got {v}")
        return v

    @field_validator("task_weights")
    @classmethod
    def _known_tasks(cls, v: dict[str, float]) -> dict[str, float]:
        unknown = set(v) - {"countdown", "multiplication"}
        if unknown:
            raise ValueError(f"corpus.task_weights: unknown task(s) {sorted(unknown)}; use countdown, multiplication")
        return v


class TrainConfig(_Frozen):
    """Pretraining loop: AdamW, linear warmup then cosine decay, loss on assistant tokens only."""

    batch_size: int = Field(32, ge=1)  # conversations per step
    lr: float = Field(3e-3, gt=0)  # peak learning rate (tiny models take large ones)
    warmup: float = Field(0.05, ge=0, lt=1)  # share of steps
    weight_decay: float = Field(0.01, ge=0)
    epochs: float = Field(1.0, gt=0)  # passes over the corpus
    max_len: int = Field(384, ge=16)  # conversations longer than this (tokens) are dropped from training
    # torch threads (results are deterministic per thread count). 1 by default: hidden-128 matrices gain little
    # from more, and on a shared machine 2 threads ran several times slower than 1 (OpenMP spin-waits).
    threads: int = Field(1, ge=1)
    # "all": loss on prompts too. Prompts of reflect conversations copy the question's numbers into the attempt,
    # so they train the copying a tiny model needs most; "assistant": loss on the answers only.
    loss_on: Literal["all", "assistant"] = "all"


class ToyPreset(_Frozen):
    name: str
    vocab_size: int = 1024  # BPE merges; tag and phrase tokens come on top
    # each fixed prompt sentence one token (corpus.prompt_phrases): prompts 2-3x shorter for the same text
    phrase_tokens: bool = False
    # BPE merges may span spaces (tokenizer.train_tokenizer(across_spaces=...)): a third fewer tokens
    merge_across_spaces: bool = False
    arch: ArchConfig
    corpus: CorpusConfig
    train: TrainConfig

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    def fingerprint(self) -> dict:
        """Everything that changes the built model, as plain JSON (for the cache key)."""
        import dataclasses

        d = self.model_dump(mode="json", exclude={"arch"})
        d["arch"] = dataclasses.asdict(self.arch)
        return d


#: Countdown of the presets (also what the quickstart recipe trains and evaluates on): + and -, every number once.
TINY_COUNTDOWN = {"min_number": 1, "max_number": 9, "min_target": 1, "max_target": 30, "operators": "+-"}
MICRO_COUNTDOWN = {"min_number": 1, "max_number": 4, "min_target": 1, "max_target": 30, "operators": "+-"}

PRESETS: dict[str, ToyPreset] = {
    # Tests and the CI smoke run: builds in ~45 s. Countdown over numbers 1-4 only, so that even this 0.14M model
    # sometimes gets one right and the whole pipeline (traces need a correct attempt) can run end to end.
    "micro": ToyPreset(
        name="micro",
        vocab_size=512,
        arch=ArchConfig(hidden_size=64, num_layers=2, num_heads=2, intermediate_size=192, max_position_embeddings=1024),
        corpus=CorpusConfig(n_conversations=5000, solve_share=0.6, task_weights={"countdown": 0.85, "multiplication": 0.15},
                            countdown_params=MICRO_COUNTDOWN, countdown_sizes={2: 0.7, 3: 0.3}, countdown_p_correct=0.7),
        train=TrainConfig(batch_size=16, lr=6e-3, max_len=384),
    ),
    # The quickstart's base model. Chosen by measurement (README, "The tiny model"); what mattered most, in order:
    # tokens per conversation (one token per fixed prompt sentence, BPE merges across spaces: a conversation
    # is ~90 tokens instead of ~170, and the numbers a step copies sit a few tokens away), a learning rate low
    # enough to learn copying (benchmarks/toy_copy_lr.py: 3e-3 at batch 16 copied 55% of number lists right
    # after 600 updates, 5e-4 100%) and the number of tokens seen (1.4M -> countdown-3 pass@1 8.6%; this
    # preset sees ~5M). Solve answers are mostly right or honestly wrong (a chain that misses the target):
    # misread numbers and slipped sums taught the model to copy and add unreliably; reflect conversations show
    # mostly wrong countdown attempts of every kind, as the model's own are. Multiplication is long multiplication column by column (toy/columns.py):
    # with partial products written whole the model never got a 2-digit product right (pass@1 1%); column by
    # column, with 40% of the corpus, it does (quick eval 69%) while countdown-3 stays near 30%.
    "tiny": ToyPreset(
        name="tiny",
        vocab_size=1024,
        phrase_tokens=True,
        merge_across_spaces=True,
        arch=ArchConfig(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=384,
                        max_position_embeddings=2048),
        corpus=CorpusConfig(n_conversations=50_000, solve_share=0.55,
                            task_weights={"countdown": 0.6, "multiplication": 0.4},
                            countdown_params=TINY_COUNTDOWN, multiplication_sizes={2: 0.9, 3: 0.1},
                            multiplication_in_order=1.0, multiplication_steps="columns",
                            multiplication_p_correct=0.8,
                            countdown_in_order=0.8, drill_share=0.2, copy_share=0.1,
                            countdown_p_correct=0.8,
                            countdown_errors={"miss": 0.7, "slip": 0.1, "wrong_op": 0.1, "misread": 0.05, "drop": 0.05},
                            reflect_p_correct=0.35, multiplication_reflect_p_correct=0.5,
                            reflect_countdown_errors={"miss": 0.4, "slip": 0.15, "wrong_op": 0.15, "misread": 0.15,
                                                      "drop": 0.15},
                            verdict_flip=0.05, compare_last=True),  # ~5.2M tokens
        # 2 threads: 1.55x the tokens/s of 1 on an idle 2-core machine (same losses); the quickstart runs alone
        train=TrainConfig(batch_size=4, lr=2e-3, warmup=0.03, max_len=512, loss_on="all", threads=2),
    ),
}


def get_preset(name: str) -> ToyPreset:
    if name not in PRESETS:
        raise ToyPresetError(f"unknown toy preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]
