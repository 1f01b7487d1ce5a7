"""The toy model's synthetic instruct corpus: **solve** and **reflect** conversations, one attempt each.

- solve: user = ``task.prompt(question, variant)`` (exactly what the sampling stage asks), assistant = ONE
  attempt in that variant's style from a noisy solver (``attempts.py``).
- reflect: user = ``prompting.reflection_prompt(task.statement(question), attempt)`` (exactly what the
  reflection stage asks), assistant = a step-by-step check ending in one verdict (``checks.py``), sometimes
  mistaken on purpose.

What the corpus must never show - it is what SkillFactory has to teach - is a second attempt, a
``<sample>``/``<reflect>``/``<think>`` tag, or a trace glue phrase inside an answer; ``violations`` enforces that
and ``build_corpus`` refuses to return a corpus that breaks it. Truth is always the task verifier's; a check whose
own reasoning disagrees with the verifier is dropped and counted (``disagreements``, expected 0).

Deterministic: conversation *i* depends only on (preset corpus config, seed, i).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from skillfactory.errors import SkillFactoryError
from skillfactory.prompting import VARIANTS, reflection_prompt
from skillfactory.records import Question
from skillfactory.tasks import get_task
from skillfactory.tasks.base import Task
from skillfactory.toy.attempts import _names, countdown_attempt, digit_parts, mult_attempt, partial_line
from skillfactory.toy.checks import countdown_check, countdown_honest, mult_check
from skillfactory.toy.columns import PLACES, TIMES, columns
from skillfactory.toy.presets import CorpusConfig

#: Bump when the corpus format changes: it is part of the cache key of built models.
# 2: trace tags are plain added tokens; 3: in-order attempts, drill conversations; 4: copy drills, error mixes,
# reflect-attempt share, phrase tokens and merges across spaces in the tokenizer; 5: multiplication steps
# (split / digits / columns)
CORPUS_VERSION = "5"

_FORBIDDEN_TAGS = re.compile(r"</?(sample|reflect|think)>", re.IGNORECASE)
_VERDICT = re.compile(r"<verdict>", re.IGNORECASE)
_ANSWER = re.compile(r"<answer>", re.IGNORECASE)


class CorpusError(SkillFactoryError, RuntimeError):
    """The corpus broke one of its rules (a bug in the noisy solvers, not a user error)."""


@dataclass(frozen=True)
class Conversation:
    kind: str  # "solve" | "reflect" | "drill" | "copy"
    task: str
    size: int  # countdown: numbers; multiplication: digits
    variant: str  # prompt variant of the attempt
    messages: list[dict[str, str]]
    correct: bool  # verifier's truth about the attempt
    verdict: bool | None = None  # reflect: the verdict written
    error: str | None = None  # the noisy solver's error kind (None = meant right)


@dataclass
class CorpusStats:
    counts: dict[str, int] = field(default_factory=dict)
    disagreements: int = 0

    def add(self, key: str) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1


def glue_phrases() -> list[str]:
    """Trace glue phrases (traces/phrases.py), or [] when that module is absent: imported lazily."""
    try:
        from skillfactory.traces.phrases import all_phrases
    except ImportError:
        return []
    return list(all_phrases())


def violations(conv: Conversation, phrases: list[str] | None = None) -> list[str]:
    """Rule breaks of one conversation's assistant turn (empty when clean)."""
    text = conv.messages[-1]["content"]
    found = []
    if _FORBIDDEN_TAGS.search(text):
        found.append("trace tag in answer")
    n_answers, n_verdicts = len(_ANSWER.findall(text)), len(_VERDICT.findall(text))
    if conv.kind == "solve" and (n_answers != 1 or n_verdicts):
        found.append(f"solve with {n_answers} answers and {n_verdicts} verdicts")
    if conv.kind == "reflect" and (n_verdicts != 1 or n_answers):
        found.append(f"reflect with {n_verdicts} verdicts and {n_answers} answers")
    if conv.kind in ("drill", "copy") and (n_verdicts or n_answers):
        found.append(f"{conv.kind} with {n_verdicts} verdicts and {n_answers} answers")
    low = text.lower()
    for p in phrases or []:
        if p.strip() and p.strip().lower() in low:
            found.append(f"glue phrase {p!r}")
            break
    return found


def _weighted(rng: random.Random, weights: dict) -> object:
    keys = sorted(weights, key=str)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


class _Tasks:
    """Task objects per (name, size), built once."""

    def __init__(self, cfg: CorpusConfig):
        self.cfg = cfg
        self._cache: dict[tuple[str, int], Task] = {}

    def get(self, name: str, size: int) -> Task:
        key = (name, size)
        if key not in self._cache:
            if name == "countdown":
                self._cache[key] = get_task("countdown", num_args=size, **self.cfg.countdown_params)
            else:
                self._cache[key] = get_task("multiplication", digits=size)
        return self._cache[key]


def countdown_fields(question) -> tuple[list[int], int]:
    return [int(n) for n in question.fields["numbers"]], int(question.fields["target"])


def mult_fields(question) -> tuple[int, int]:
    f = question.fields
    return int(f["a"]), int(f["b"])


DRILL_PROMPT = "Work out each line."


def drill_lines(cfg: CorpusConfig, name: str, rng: random.Random) -> list[str]:
    """Arithmetic lines in the form the attempts and checks write their steps (multiplication: also the running
    sums of its partial products, in every ``multiplication_steps`` mode)."""
    lines = []
    if name == "countdown":
        lo, hi = int(cfg.countdown_params.get("min_number", 1)), int(cfg.countdown_params.get("max_number", 9))
        top = hi * (max(cfg.countdown_sizes) - 1)  # largest running value of a chain before its last step
        ops = [o for o in cfg.countdown_params.get("operators", "+-") if o in "+-"] or ["+"]
        while len(lines) < cfg.drill_lines:
            a, b, op = rng.randint(lo, top), rng.randint(lo, hi), rng.choice(ops)
            if op == "-" and a <= b:
                continue
            lines.append(f"{a} {op} {b} = {a + b if op == '+' else a - b}")
        return lines
    while len(lines) < cfg.drill_lines:  # the partial products and running sums of a multiplication attempt
        digits = int(_weighted(rng, cfg.multiplication_sizes))
        a, b = (rng.randint(10 ** (digits - 1), 10 ** digits - 1) for _ in range(2))
        parts = digit_parts(b)
        partials = [a * part for part in parts]
        if cfg.multiplication_steps == "columns":  # the facts and the two-number sums of the columns
            for col in columns(a, b):
                lines += [f"{da} {TIMES} {db} = {v}" for da, db, v in col.facts]
                values = [v for _, _, v in col.facts] + ([col.carry_in] if col.carry_in else [])
                lines += [f"{s - v} + {v} = {s}" for s, v in zip(col.sums, values[1:])]
        elif cfg.multiplication_steps == "digits":  # each single-digit fact on its own line, then the partials
            lines += [f"{d} x {part} = {d * part}" for part in parts for d in digit_parts(a)]
            lines += [partial_line(a, part, v, [d * part for d in digit_parts(a)]) for part, v in zip(parts, partials)]
        else:
            lines += [f"{a} x {part} = {v}" for part, v in zip(parts, partials)]
        # the running sums of the partial products follow in every mode: in "columns" no attempt writes them,
        # they are addition practice beyond the columns' small sums (the tiny preset was measured with them)
        acc = partials[0]
        for v in partials[1:]:
            lines.append(f"{acc} + {v} = {acc + v}")
            acc += v
    return lines[:cfg.drill_lines]


def drill_conversation(cfg: CorpusConfig, name: str, rng: random.Random) -> Conversation:
    """A drill: the fixed drill prompt, then ``cfg.drill_lines`` lines of ``name``'s step arithmetic."""
    messages = [{"role": "user", "content": DRILL_PROMPT},
                {"role": "assistant", "content": "\n".join(drill_lines(cfg, name, rng))}]
    return Conversation("drill", name, 0, "", messages, True)


def copy_conversation(cfg: CorpusConfig, name: str, rng: random.Random) -> Conversation:
    """A copy drill: a question's numbers (the task's first sentence) restated the way attempts and checks
    restate them, e.g. "Using the numbers [6, 5, 3], create an equation that equals 14." -> "It uses 6, 5 and 3.
    The target is 14." or "78 x 96" -> "78 x 96 = 78 x 90 + 78 x 6". No attempt, no answer, no verdict."""
    if name == "countdown":
        lo, hi = int(cfg.countdown_params.get("min_number", 1)), int(cfg.countdown_params.get("max_number", 9))
        size = int(_weighted(rng, cfg.countdown_sizes))
        nums = [rng.randint(lo, hi) for _ in range(size)]
        target = rng.randint(int(cfg.countdown_params.get("min_target", 1)), int(cfg.countdown_params.get("max_target", 30)))
        task = get_task("countdown", num_args=size, **cfg.countdown_params)
        statement = task.statement(Question(id="copy", task="countdown", fields={"numbers": nums, "target": target},
                                            gold=""))
        user = statement.split(". ")[0] + "."  # the question's first sentence, in the task's own words
        text = f"It uses {_names(nums)}.\nThe target is {target}."
    else:
        digits = int(_weighted(rng, cfg.multiplication_sizes))
        a, b = (rng.randint(10 ** (digits - 1), 10 ** digits - 1) for _ in range(2))
        user = f"{a} x {b}"
        text = f"I need the product of {a} and {b}.\n"
        if cfg.multiplication_steps == "columns":  # which digits meet in which column
            text += "\n".join(f"{PLACES[c.place]}: " + ", ".join(f"{da} {TIMES} {db}" for da, db, _ in c.facts)
                               for c in columns(a, b))
        else:
            text += f"{a} x {b} = " + " + ".join(f"{a} x {p}" for p in digit_parts(b))
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": text}]
    return Conversation("copy", name, 0, "", messages, True)


def _overridden(value, *overrides):
    """The last of ``overrides`` that is set (not None), else ``value``: the preset's "None: as the general
    setting" fields, e.g. ``reflect_p_correct`` over ``countdown_p_correct``."""
    for override in overrides:
        value = value if override is None else override
    return value


def make_conversation(cfg: CorpusConfig, tasks: _Tasks, seed: int, i: int, stats: CorpusStats) -> Conversation | None:
    """Conversation ``i`` of the corpus (None when dropped)."""
    rng = random.Random(f"toy-corpus/{seed}/{i}")
    name = _weighted(rng, cfg.task_weights)
    if cfg.drill_share and rng.random() < cfg.drill_share:
        stats.add(f"drill/{name}")
        return drill_conversation(cfg, name, rng)
    if cfg.copy_share and rng.random() < cfg.copy_share:
        stats.add(f"copy/{name}")
        return copy_conversation(cfg, name, rng)
    size = int(_weighted(rng, cfg.countdown_sizes if name == "countdown" else cfg.multiplication_sizes))
    task = tasks.get(name, size)
    # anything but test: the corpus predates the validation split (carved out of train), and drawing from both
    # keeps it, and so the toy model, unchanged. Validation questions may appear in pretraining, as training
    # questions do; test questions never.
    question = task.generate_one(i, seed=seed, split="train", also=("validation",))
    kind = "solve" if rng.random() < cfg.solve_share else "reflect"
    variant = rng.choice(VARIANTS)
    if name == "countdown":
        numbers, target = countdown_fields(question)
        p_right, errors = cfg.countdown_p_correct, cfg.countdown_errors
        if kind == "reflect":
            p_right = _overridden(p_right, cfg.reflect_p_correct)
            errors = _overridden(errors, cfg.reflect_countdown_errors)
        att = countdown_attempt(numbers, target, variant, rng, p_right,
                                cfg.countdown_params.get("operators", "+-"), cfg.countdown_in_order, errors)
    else:
        x, y = mult_fields(question)
        p_right = cfg.multiplication_p_correct
        if kind == "reflect":
            p_right = _overridden(p_right, cfg.reflect_p_correct, cfg.multiplication_reflect_p_correct)
        att = mult_attempt(x, y, variant, rng, p_right, cfg.multiplication_in_order, cfg.multiplication_steps)
    truth = task.check(question, att.text).correct
    stats.add(f"{name}{size}/{'right' if truth else 'wrong'}")
    if kind == "solve":
        messages = [{"role": "user", "content": task.prompt(question, variant)},
                    {"role": "assistant", "content": att.text}]
        return Conversation(kind, name, size, variant, messages, truth, None, att.error)
    flip = rng.random() < cfg.verdict_flip
    if name == "countdown":
        if countdown_honest(att, numbers, target) != truth:
            stats.disagreements += 1
            return None
        check, verdict = countdown_check(att, numbers, target, flip, rng, cfg.compare_last)
    else:
        answer = task.extract_answer(att.text)
        if (answer is not None and answer.isdigit() and int(answer) == x * y) != truth:
            stats.disagreements += 1
            return None
        check, verdict = mult_check(att, answer, x, y, flip, rng, cfg.compare_last, cfg.multiplication_steps)
    stats.add(f"reflect/{'agree' if verdict == truth else 'flipped'}")
    messages = [{"role": "user", "content": reflection_prompt(task.statement(question), att.text)},
                {"role": "assistant", "content": check}]
    return Conversation(kind, name, size, variant, messages, truth, verdict, att.error)


def warmup_conversations(cfg: CorpusConfig, seed: int) -> list[Conversation]:
    """The curriculum's first part: ``cfg.warmup_drills`` drill and ``cfg.warmup_copies`` copy conversations
    (trained on first; the pretraining loop shuffles them among themselves)."""
    out = []
    for i in range(cfg.warmup_drills):
        rng = random.Random(f"toy-warmup/{seed}/{i}")
        out.append(drill_conversation(cfg, _weighted(rng, cfg.task_weights), rng))
    for i in range(cfg.warmup_copies):
        rng = random.Random(f"toy-warmup-copy/{seed}/{i}")
        out.append(copy_conversation(cfg, _weighted(rng, cfg.task_weights), rng))
    return out


def build_corpus(cfg: CorpusConfig, seed: int = 0, n: int | None = None) -> tuple[list[Conversation], CorpusStats]:
    """The corpus for a seed (``n`` overrides the configured size): the warm-up drills first (see
    ``warmup_conversations``), then the mixed conversations. Raises CorpusError if any rule is broken."""
    tasks, stats = _Tasks(cfg), CorpusStats()
    phrases = glue_phrases()
    out = warmup_conversations(cfg, seed) if n is None else []
    if out:
        stats.counts["warmup_drills"] = sum(c.kind == "drill" for c in out)
        stats.counts["warmup_copies"] = sum(c.kind == "copy" for c in out)
    for i in range(cfg.n_conversations if n is None else n):
        conv = make_conversation(cfg, tasks, seed, i, stats)
        if conv is None:
            continue
        bad = violations(conv, phrases)
        if bad:
            raise CorpusError(f"toy corpus conversation {i} breaks a rule ({bad[0]}): {conv.messages[-1]['content']!r}")
        out.append(conv)
    return out, stats


_SENTENCE_END = re.compile(r"(?<=[.?!:])\s+")


def prompt_phrases(convs: list[Conversation], min_share: float = 0.02, min_chars: int = 12) -> list[str]:
    """The fixed sentences of the corpus's prompts, for ``train_tokenizer(phrases=...)``: every sentence (split
    at sentence ends and new lines) of a user turn that recurs verbatim in at least ``min_share`` of the
    conversations (so a question's own numbers never make one) and never occurs in an assistant turn (a phrase
    token the model would also have to write would tokenize one way when read and another when generated).
    Sorted, so the tokenizer built from them is deterministic."""
    from collections import Counter

    counts: Counter[str] = Counter()
    for c in convs:
        if c.kind not in ("solve", "reflect"):
            continue
        for line in c.messages[0]["content"].split("\n"):
            counts.update(set(s for s in _SENTENCE_END.split(line.strip()) if len(s) >= min_chars))
    n = sum(c.kind in ("solve", "reflect") for c in convs)
    frequent = [s for s, k in counts.items() if k >= max(2, min_share * n)]
    answers = "\n".join(c.messages[-1]["content"] for c in convs)
    return sorted(s for s in frequent if s not in answers)


def tokenizer_texts(convs: list[Conversation]) -> list[str]:
    """Texts the tokenizer is trained on: the corpus plus every prompt and glue phrase the pipeline will use,
    so none of them falls apart into bytes."""
    from skillfactory.prompting import ANSWER_RULE, REFLECTION_TEMPLATE, VARIANT_INSTRUCTIONS

    texts = [m["content"] for c in convs for m in c.messages]
    extra = [ANSWER_RULE, REFLECTION_TEMPLATE, *VARIANT_INSTRUCTIONS.values(), *glue_phrases()]
    return texts + extra * 20
