"""Parse the skill structure of one answer: attempts (<sample> blocks), reflections, verdicts.

Shared by GRPO step logging, evaluation metrics and the toy model's checks, so that "an attempt" means the
same thing everywhere.
"""

from __future__ import annotations

import re
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
