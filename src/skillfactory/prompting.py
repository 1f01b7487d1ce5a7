"""Prompt wording shared by every task and stage: the 4 solving styles, the answer-format rule, and the
reflection prompt with its verdict parser.

One module holds it because three places must agree on it word for word: the tasks (prompts for sampling),
the reflection stage, and the toy model's pretraining corpus (which teaches the tiny model to follow exactly
these prompts).
"""

from __future__ import annotations

import re

#: The four published prompt variants, in a fixed order (sampling spreads samples evenly over them).
VARIANTS: tuple[str, ...] = ("original", "plan_and_execute", "alternatively", "rephrase")

#: Appended to every variant: the verifier reads only the last <answer> block.
ANSWER_RULE = "Give your final answer inside <answer> </answer> tags."

#: What each variant asks for, beyond the plain task statement.
VARIANT_INSTRUCTIONS: dict[str, str] = {
    "original": "",
    "plan_and_execute": "First write a short plan, then carry out the plan step by step.",
    "alternatively": "Consider alternative approaches before you settle on one, then solve it.",
    "rephrase": "First restate the problem in your own words, then solve it.",
}


def variant_prompt(statement: str, variant: str) -> str:
    """Wrap a task statement in one of the 4 solving styles. Raises ValueError on an unknown variant."""
    if variant not in VARIANT_INSTRUCTIONS:
        raise ValueError(f"unknown prompt variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    parts = [statement.strip()]
    if VARIANT_INSTRUCTIONS[variant]:
        parts.append(VARIANT_INSTRUCTIONS[variant])
    parts.append(ANSWER_RULE)
    return "\n".join(parts)


REFLECTION_TEMPLATE = (
    "Here is a question and an answer to it. Check the answer step by step. "
    "End with <verdict>Correct</verdict> if the answer is right or <verdict>Incorrect</verdict> if it is wrong.\n"
    "Question:\n{question}\n"
    "Answer:\n{attempt}"
)


def reflection_prompt(question_statement: str, attempt: str) -> str:
    """The user turn that asks a model to check one attempt and end with a verdict."""
    return REFLECTION_TEMPLATE.format(question=question_statement.strip(), attempt=attempt.strip())


_VERDICT = re.compile(r"<verdict>\s*(correct|incorrect)\s*</verdict>", re.IGNORECASE)
_VERDICT_OPEN = re.compile(r"<verdict>", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """True for exactly one ``<verdict>Correct</verdict>``, False for exactly one Incorrect, else None.

    A reflection with two verdicts, or an opening tag that does not parse, is invalid: keeping it would
    teach the student an ambiguous check.
    """
    found = _VERDICT.findall(text)
    if len(found) != 1 or len(_VERDICT_OPEN.findall(text)) != 1:
        return None
    return found[0].lower() == "correct"


# ---- the tags of a SkillFactory trace: the trace builder writes them, evaluation counts them ----
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SAMPLE_OPEN, SAMPLE_CLOSE = "<sample>", "</sample>"
REFLECT_OPEN, REFLECT_CLOSE = "<reflect>", "</reflect>"
