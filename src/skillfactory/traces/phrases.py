"""Glue phrases of silver traces: the short sentences between attempts and before the answer.

Why pools and not one fixed sentence: a student fine-tuned on one phrase learns the phrase, not the skill.
Drawing the wording at random (with the trace's own seeded RNG) keeps the signal in *when* a phrase appears:
after-correct phrases only ever follow an attempt whose reflection said Correct, after-incorrect ones only an
Incorrect one, backtrack phrases only a wrong last attempt with a right one earlier, confirm phrases only two
right attempts in a row.

Each phrase is its own list element (the published builder lost phrases to missing commas, which glued two
strings into one); tests check that phrases are distinct, short, and that no phrase contains another. The toy
model's tokenizer is trained on a corpus that includes these phrases, so they stay plain English: no tags, no
task-specific words.
"""

from __future__ import annotations

import random

#: Neutral lead-ins for another try; optionally appended after an after-correct / after-incorrect phrase.
GENERIC: tuple[str, ...] = (
    "Let me look at this from another angle.",
    "I will work through it once more.",
    "Here is another attempt.",
    "Let me approach it in a new way.",
    "I will go through the steps again.",
    "Let me start over with fresh eyes.",
    "One more attempt, step by step.",
    "Let me think about it differently.",
    "I will solve it again from the beginning.",
    "Let me see if another method works.",
    "Trying once more, carefully this time.",
    "Let me redo the work.",
)

#: After an attempt whose reflection said Correct: keep going, to check it another way.
AFTER_CORRECT: tuple[str, ...] = (
    "That looks right, but I should double-check it.",
    "This seems correct. Let me confirm with another attempt.",
    "The answer checks out, but a second attempt will make sure.",
    "That appears to work. I will verify it another way.",
    "Good, that seems to hold. Let me make sure with a new attempt.",
    "This answer looks fine, yet I want to be certain.",
    "It seems correct so far. Another attempt will confirm it.",
    "That works, I think. Let me test it once more.",
    "The check passed. Still, I will try again to be safe.",
    "This looks correct. A second solution would confirm it.",
    "So far so good. Let me verify with a fresh attempt.",
    "That seems right. I will confirm it independently.",
)

#: After an attempt whose reflection said Incorrect: retry.
AFTER_INCORRECT: tuple[str, ...] = (
    "That was wrong, so I need another approach.",
    "This answer does not work. Let me try again.",
    "The check failed, so I will start over.",
    "That is not right. I will try something else.",
    "My answer was incorrect. Let me fix it.",
    "This attempt has a mistake. Let me try a new one.",
    "That does not hold up. I need a different plan.",
    "The result is off, so I will rework it.",
    "That failed the check. Time for another try.",
    "This is wrong. Let me go back and try another way.",
    "I made an error there. Let me attempt it again.",
    "That did not work out. I will try a different route.",
)

#: Between ``</think>`` and the final ``<answer>``.
ENDING: tuple[str, ...] = (
    "So the final answer is:",
    "Therefore, my final answer is:",
    "Putting it all together, the answer is:",
    "In conclusion, the answer is:",
    "My final answer is as follows:",
    "The answer I settle on is:",
    "Based on the work above, the answer is:",
    "After checking, the final answer is:",
    "Here is my final answer:",
    "To sum up, the answer is:",
    "This gives the final answer:",
    "The final result is:",
)

#: After a wrong last attempt when an earlier attempt was right (format ``*C*IC``): return to the earlier one.
BACKTRACK: tuple[str, ...] = (
    "This one is wrong, but an earlier attempt was right. Going back to it.",
    "That failed, yet a previous attempt worked. Let me return to it.",
    "Wrong again, but I already had a correct solution earlier. I will restate it.",
    "This does not work, though an earlier answer did. Back to that one.",
    "The last attempt is wrong. An earlier one was correct, so I will use it.",
    "That is off, but one of my earlier attempts checked out. Let me go back to it.",
    "Not right. I remember an earlier attempt that worked; here it is again.",
    "This attempt fails, so I will fall back on the earlier correct one.",
    "That is wrong. The solution I found before was right, so I return to it.",
    "No good. Let me go back to the earlier attempt that passed the check.",
    "This one is off. An earlier attempt already solved it, so I will repeat it.",
    "That did not hold. Returning to the earlier solution that was correct.",
)

#: After two right attempts in a row (format ``*CC``): stop checking.
CONFIRM: tuple[str, ...] = (
    "Several checks agree, so I am confident in this answer.",
    "Both attempts give the same verified result.",
    "I have verified this more than once, so it is final.",
    "Two independent attempts agree. That settles it.",
    "This has been confirmed twice now.",
    "The answer holds up under repeated checks.",
    "Every check I made points to the same answer.",
    "Confirmed again. I am sure of this result.",
    "The repeated attempts agree, so this is the answer.",
    "Verified several times; this is my answer.",
    "With two matching checks, I can stop here.",
    "The result is consistent across attempts, so I will commit to it.",
)

#: Pool name -> phrases. The names are the glue categories the invariant tests check.
POOLS: dict[str, tuple[str, ...]] = {
    "generic": GENERIC,
    "after_correct": AFTER_CORRECT,
    "after_incorrect": AFTER_INCORRECT,
    "ending": ENDING,
    "backtrack": BACKTRACK,
    "confirm": CONFIRM,
}

#: Chance that an after-correct / after-incorrect phrase is followed by a generic lead-in (more variety).
GENERIC_FOLLOW_P = 0.3


def all_phrases() -> list[str]:
    """Every phrase of every pool, in pool order (e.g. for a tokenizer's training corpus)."""
    return [p for pool in POOLS.values() for p in pool]


def pick(rng: random.Random, pool: str, size: int | None = None) -> str:
    """One phrase of a pool, drawn with the caller's RNG; ``size``: from the pool's first ``size`` phrases only."""
    phrases = POOLS[pool]
    return rng.choice(phrases[:size] if size else phrases)


def glue_after(rng: random.Random, correct: bool, size: int | None = None) -> str:
    """The glue after a non-final attempt: a phrase chosen by the attempt's truth, sometimes plus a lead-in."""
    phrase = pick(rng, "after_correct" if correct else "after_incorrect", size)
    if rng.random() < GENERIC_FOLLOW_P:
        phrase = f"{phrase} {pick(rng, 'generic', size)}"
    return phrase


def classify_glue(text: str) -> str | None:
    """The pool a glue text was drawn from (``after_correct``, ``backtrack``, ...), or None if it is no glue.

    A glue is one phrase, or an after-correct / after-incorrect phrase followed by one generic phrase.
    """
    text = text.strip()
    for name, pool in POOLS.items():
        if text in pool:
            return name
    for name in ("after_correct", "after_incorrect"):
        for phrase in POOLS[name]:
            if text.startswith(phrase + " ") and text[len(phrase) + 1:] in GENERIC:
                return name
    return None
