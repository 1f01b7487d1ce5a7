"""Synthetic inputs for the trace builder tests: a tiny addition task and random samples/reflections.

The task is referenced by its dotted path (``trace_helpers:AddTask``), as a user task would be, so the
builder resolves it through ``tasks.task_for`` like any registered task.
"""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from skillfactory.prompting import VARIANTS
from skillfactory.records import Question, Reflection, Sample, write_jsonl
from skillfactory.tasks import CheckResult, Task

TASK = "trace_helpers:AddTask"
_LEADING_THINK = re.compile(r"\A\s*(?:<think>)?((?:(?!<think>).)*?)</think>(.*)\Z", re.S)


def as_in_trace(text: str) -> str:
    """A record's text as a trace block holds it, restated independently of clean.py: a leading thinking block
    (with or without its opener) becomes plain text, reasoning and rest joined by a blank line."""
    m = _LEADING_THINK.match(text)
    if m is None:
        return text.strip()
    return "\n\n".join(p for p in (m[1].strip(), m[2].strip()) if p)


def trace_worthy(text: str) -> bool:
    """Can this record text go into a trace? (non-empty, no trace tag, no chat special token once cleaned)"""
    t = as_in_trace(text)
    return bool(t) and re.search(r"</?(think|sample|reflect)>|<\|[a-z_]+\|>", t) is None


class AddTask(Task):
    name = "add"

    def make_question(self, rng: random.Random):
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        return {"a": a, "b": b}, str(a + b), {}

    def statement(self, question: Question) -> str:
        return f"What is {question.fields['a']} plus {question.fields['b']}?"

    def check_answer(self, question: Question, answer: str) -> CheckResult:
        if not answer.strip().lstrip("-").isdigit():
            return CheckResult.wrong("unparseable")
        ok = int(answer) == question.fields["a"] + question.fields["b"]
        return CheckResult.ok() if ok else CheckResult.wrong("wrong_value")


def question(i: int, rng: random.Random) -> Question:
    a, b = rng.randint(1, 50), rng.randint(1, 50)
    return Question(id=f"add/q{i:05d}", task=TASK, fields={"a": a, "b": b}, gold=str(a + b))


def make_records(seed: int, n_questions: int = 20, max_attempts: int = 12, n_reflections: int = 3,
                 p_correct: float | None = None) -> tuple[list[Sample], list[Reflection]]:
    """Random samples and reflections with every kind of imperfection the builder must handle.

    Per question the share of correct attempts, the variants used, and the share of kept reflections vary,
    so some questions have no correct attempt, no incorrect one, a single variant, or nothing usable.
    """
    rng = random.Random(seed)
    samples: list[Sample] = []
    reflections: list[Reflection] = []
    for i in range(n_questions):
        q = question(i, rng)
        gold = q.fields["a"] + q.fields["b"]
        pc = p_correct if p_correct is not None else rng.choice([0.0, 0.2, 0.5, 0.8, 1.0])
        variants = rng.sample(VARIANTS, rng.randint(1, len(VARIANTS)))
        counters = dict.fromkeys(variants, 0)
        for _ in range(rng.randint(0, max_attempts)):
            v = rng.choice(variants)
            index = counters[v]
            counters[v] += 1
            correct = rng.random() < pc
            value = gold if correct else gold + rng.choice([-3, -1, 1, 2, 10])
            kind = rng.random()
            a, b = q.fields["a"], q.fields["b"]
            if kind < 0.05:
                text, extracted, correct = f"[{q.id} {v} {index}] I am not sure.", None, False
            elif kind < 0.08:  # a thinking model's leading block (usable), a stray tag or special token (not)
                text = [f"<think>[{q.id} {v} {index}] {a} + {b}</think>\n<answer>{value}</answer>",
                        f"[{q.id} {v} {index}] {a} plus {b}\n</think>\n\n<answer>{value}</answer>",
                        f"<think>\n\n</think>\n\n[{q.id} {v} {index}] <answer>{value}</answer>",
                        f"[{q.id} {v} {index}] {a} + {b} <sample>{value}</sample>\n<answer>{value}</answer>",
                        f"[{q.id} {v} {index}] {a} + {b} = {value}\n<answer>{value}</answer><|im_end|>"][index % 5]
                extracted = str(value)
            else:
                text = f"[{q.id} {v} {index}] {q.fields['a']} + {q.fields['b']} = {value}\n<answer>{value}</answer>"
                extracted = str(value)
            finish = "skipped" if rng.random() < 0.03 else "stop"
            s = Sample(question=q, variant=v, index=index, prompt=f"prompt {v}", text=text, extracted=extracted,
                       correct=correct, why="ok" if correct else "wrong_value", n_tokens=10, finish_reason=finish)
            samples.append(s)
            p_keep = rng.choice([0.0, 0.5, 0.9])
            for k in range(n_reflections):
                keep = rng.random() < p_keep
                verdict: bool | None = correct if keep else rng.choice([not correct, None])
                word = {True: "<verdict>Correct</verdict>", False: "<verdict>Incorrect</verdict>", None: "no idea"}
                check = f"Check {k} of {s.id}: {a} + {b} vs {value}. {word[verdict]}"
                if kind > 0.9:  # a thinking reflection (usable) or one ending in an end-of-turn token (not)
                    check = [f"<think>\nweighing {s.id}\n</think>\n\n{check}", f"{check}<|endoftext|>", check][k % 3]
                reflections.append(Reflection(
                    sample_id=s.id, question_id=q.id, index=k, n_tokens=5, finish_reason="stop",
                    text=check, verdict=verdict, truth=correct, kept=verdict == correct))
    rng.shuffle(samples)  # file order must not matter
    rng.shuffle(reflections)
    return samples, reflections


def write_records(tmp: Path, seed: int, **kw: Any) -> tuple[Path, Path]:
    samples, reflections = make_records(seed, **kw)
    s, r = tmp / "samples.jsonl", tmp / "reflections.jsonl"
    write_jsonl(s, samples)
    write_jsonl(r, reflections)
    return s, r


def raw_rows(seed: int, n_questions: int = 15) -> list[dict[str, Any]]:
    """Rows in the published raw layout built from the same synthetic records."""
    samples, reflections = make_records(seed, n_questions=n_questions)
    by_sample: dict[str, list[Reflection]] = {}
    for r in sorted(reflections, key=lambda r: r.index):
        by_sample.setdefault(r.sample_id, []).append(r)
    rows = []
    for s in sorted(samples, key=lambda s: s.id):
        rows.append({
            "question": f"What is {s.question.fields['a']} plus {s.question.fields['b']}?",
            "answer": s.question.gold,
            "prompt_variant": s.variant,
            "model_responses__mutated_prompts": [s.text],
            "model_responses__mutated_prompts__eval_is_correct": [s.correct],
            "model_responses__mutated_prompts__eval_extracted_answers": [s.extracted],
            "model_responses__mutated_prompts_reflection": [r.text for r in by_sample.get(s.id, [])],
        })
    return rows
