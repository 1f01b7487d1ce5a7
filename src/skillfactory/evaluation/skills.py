"""Parse the skill structure of one answer: attempts (<sample> blocks), reflections, verdicts.

Shared by GRPO step logging, evaluation metrics and the toy model's checks, so that "an attempt" means the
same thing everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from skillfactory.prompting import parse_verdict

_SAMPLE = re.compile(r"<sample>(.*?)</sample>", re.DOTALL | re.IGNORECASE)
_REFLECT = re.compile(r"<reflect>(.*?)</reflect>", re.DOTALL | re.IGNORECASE)
_VERDICT = re.compile(r"<verdict>\s*(correct|incorrect)\s*</verdict>", re.IGNORECASE)
_BLOCK = re.compile(r"<(sample|reflect)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class Step:
    """One element of a trace in order: an attempt, or a reflection with its parsed verdict."""

    kind: str  # "sample" | "reflect"
    text: str
    verdict: bool | None = None  # for reflections: True=Correct, False=Incorrect, None=missing/invalid


def parse_steps(text: str) -> list[Step]:
    """The attempts and reflections of an answer, in order of appearance."""
    steps = []
    for m in _BLOCK.finditer(text):
        kind = m.group(1).lower()
        body = m.group(2)
        steps.append(Step(kind, body, parse_verdict(body) if kind == "reflect" else None))
    return steps


@dataclass(frozen=True)
class SkillCounts:
    attempts: int
    reflections: int
    verdicts: int

    def as_dict(self) -> dict[str, int]:
        return {"attempts": self.attempts, "reflections": self.reflections, "verdicts": self.verdicts}


def count_skills(text: str) -> SkillCounts:
    """Counts of <sample> blocks, <reflect> blocks and <verdict> tags in one answer."""
    return SkillCounts(len(_SAMPLE.findall(text)), len(_REFLECT.findall(text)), len(_VERDICT.findall(text)))


# ---- skill-usage analysis of one answer (evaluation) ----------------------------------------------------------

_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)


def _norm(answer: str | None) -> str | None:
    return None if answer is None else " ".join(answer.split())


@dataclass(frozen=True)
class SkillUsage:
    """How one answer used the skills, judged with the task verifier.

    Conventions (documented once, used by every metric):
    - an *attempt* is a ``<sample>`` block; an answer with no ``<sample>`` block at all (a base model that never
      writes the tags) counts as **one attempt with no reflection**;
    - a reflection's verdict is about the most recent attempt before it (a reflection before any attempt is
      counted but judges nothing); an attempt is correct when its own last ``<answer>`` verifies;
    - a *retry* after an Incorrect verdict: another ``<sample>`` follows it somewhere later in the answer;
      a *stop* after a Correct verdict: no ``<sample>`` follows it;
    - ``final_matches_last_correct``: the answer's final ``<answer>`` (the last one in the whole text) equals,
      after whitespace normalisation, the extracted answer of the last attempt judged Correct; None when no
      attempt was judged Correct.
    """

    tagged: bool  # the answer has at least one <sample> block
    attempts: int
    reflections: int
    verdicts: int  # reflections with exactly one parseable verdict
    verdicts_judged: int  # verdicts about an attempt (those after some attempt)
    verdicts_right: int  # ... that agree with the verifier on that attempt
    incorrect_verdicts: int
    retries_after_incorrect: int
    correct_verdicts: int
    stops_after_correct: int
    attempts_correct: int
    final_matches_last_correct: bool | None
    attempt_results: tuple[bool, ...] = ()  # verifier verdict on each attempt, in order (for trace viewers)
    #: in the trace structure: at least one <sample>, every <sample> closed, a final <answer> after the last one
    well_formed: bool = False
    glue_lines: int = 0  # lines outside every block and tag: glue phrases, or text a model made up
    glue_verbatim: int = 0  # ... that are exactly a phrase (or phrase + lead-in) of the trace builder's pools

    def as_dict(self) -> dict[str, object]:
        d = dict(self.__dict__)
        d["attempt_results"] = list(self.attempt_results)
        return d


_ANY_BLOCK = re.compile(r"<(sample|reflect|answer)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_TAG_LINE = re.compile(r"^\s*</?(think|sample|reflect|answer|verdict)>\s*$", re.IGNORECASE)


def structure_of(text: str) -> tuple[bool, int, int]:
    """(well_formed, glue lines, verbatim glue lines) of one answer: what SFT on traces should teach."""
    from skillfactory.traces.phrases import classify_glue

    opened = len(re.findall(r"<sample>", text, re.IGNORECASE))
    closed = len(_SAMPLE.findall(text))
    last_close = text.lower().rfind("</sample>")
    well_formed = opened >= 1 and opened == closed and bool(_ANSWER_BLOCK.search(text[last_close:]))
    outside = _ANY_BLOCK.sub("\n", text)
    lines = [ln.strip() for ln in outside.splitlines() if ln.strip() and not _TAG_LINE.match(ln)]
    return well_formed, len(lines), sum(classify_glue(ln) is not None for ln in lines)


def analyze_answer(text: str, attempt_correct: Callable[[str], bool]) -> SkillUsage:
    """Skill usage of one answer; ``attempt_correct(attempt_text)`` verifies one attempt (e.g.
    ``lambda t: task.verify(question, t)``)."""
    steps = parse_steps(text)
    attempts = [s for s in steps if s.kind == "sample"]
    tagged = bool(attempts)
    if not tagged:
        ok = attempt_correct(text)
        return SkillUsage(False, 1, 0, 0, 0, 0, 0, 0, 0, 0, int(ok), None, (ok,))  # no structure, no glue
    verdicts = judged = right = n_inc = retries = n_cor = stops = 0
    last_attempt: Step | None = None
    last_correct_answer: str | None = None
    any_correct_verdict = False
    correctness: dict[int, bool] = {}
    for i, step in enumerate(steps):
        if step.kind == "sample":
            last_attempt = step
            correctness[i] = attempt_correct(step.text)
            continue
        if step.verdict is None:
            continue
        verdicts += 1
        later_attempt = any(s.kind == "sample" for s in steps[i + 1:])
        if step.verdict:
            n_cor += 1
            stops += int(not later_attempt)
        else:
            n_inc += 1
            retries += int(later_attempt)
        if last_attempt is not None:
            judged += 1
            j = max(k for k in correctness if k < i)
            right += int(correctness[j] == step.verdict)
            if step.verdict:
                any_correct_verdict = True
                found = _ANSWER_BLOCK.findall(last_attempt.text)
                last_correct_answer = _norm(found[-1]) if found else None
    reflections = sum(1 for s in steps if s.kind == "reflect")
    finals = _ANSWER_BLOCK.findall(text)
    final = _norm(finals[-1]) if finals else None
    matches = (final is not None and final == last_correct_answer) if any_correct_verdict else None
    well_formed, glue, verbatim = structure_of(text)
    return SkillUsage(True, len(attempts), reflections, verdicts, judged, right, n_inc, retries, n_cor, stops,
                      sum(correctness.values()), matches, tuple(correctness[k] for k in sorted(correctness)),
                      well_formed, glue, verbatim)


def aggregate_usage(usages: list[dict]) -> dict[str, float | int | None]:
    """Per-answer means and pooled rates over many :class:`SkillUsage` dicts (rates are None when their
    denominator is 0: e.g. no verdict was ever given)."""
    n = len(usages)

    def total(key: str) -> int:
        return sum(int(u.get(key, 0)) for u in usages)  # .get: usages saved before a field existed

    def rate(num: str, den: str) -> float | None:
        d = total(den)
        return total(num) / d if d else None

    finals = [u["final_matches_last_correct"] for u in usages if u["final_matches_last_correct"] is not None]
    return {
        "answers": n,
        "tagged_rate": total("tagged") / n if n else None,
        "well_formed_rate": total("well_formed") / n if n else None,
        "glue_verbatim_rate": rate("glue_verbatim", "glue_lines"),
        "glue_lines": total("glue_lines"),
        "attempts_per_answer": total("attempts") / n if n else None,
        "reflections_per_answer": total("reflections") / n if n else None,
        "verdicts_per_answer": total("verdicts") / n if n else None,
        "verdict_accuracy": rate("verdicts_right", "verdicts_judged"),
        "verdicts_judged": total("verdicts_judged"),
        "retry_after_incorrect": rate("retries_after_incorrect", "incorrect_verdicts"),
        "incorrect_verdicts": total("incorrect_verdicts"),
        "stop_after_correct": rate("stops_after_correct", "correct_verdicts"),
        "correct_verdicts": total("correct_verdicts"),
        "final_matches_last_correct": sum(finals) / len(finals) if finals else None,
        "answers_with_correct_verdict": len(finals),
    }
