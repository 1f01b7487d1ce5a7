"""Skill-usage metrics on scripted answers, against counts made by hand."""

from __future__ import annotations

import pytest

from skillfactory.evaluation.skills import aggregate_usage, analyze_answer, count_skills, parse_steps


def verifier(gold: str):
    import re

    def ok(text: str) -> bool:
        found = re.findall(r"<answer>(.*?)</answer>", text, re.S)
        return bool(found) and found[-1].strip() == gold

    return ok


# attempt 1 wrong (judged Incorrect: right), attempt 2 right (judged Correct: right), final = attempt 2
TWO_ATTEMPTS = """<think>
<sample>
3+4 = 8 <answer>8</answer>
</sample>
<reflect>
3+4 is 7, not 8. <verdict>Incorrect</verdict>
</reflect>
Let me try again.
<sample>
3+4 = 7 <answer>7</answer>
</sample>
<reflect>
Checks out. <verdict>Correct</verdict>
</reflect>
</think>

So the final answer is:

<answer>
7
</answer>"""

# attempt 1 right but judged Incorrect (wrong verdict) and no retry; attempt judged Correct is wrong; final differs
MISJUDGED = """<think>
<sample>
<answer>7</answer>
</sample>
<reflect>
<verdict>Incorrect</verdict>
</reflect>
<sample>
<answer>9</answer>
</sample>
<reflect>
<verdict>Correct</verdict>
</reflect>
<sample>
<answer>5</answer>
</sample>
</think>
<answer>5</answer>"""


def test_two_attempts_by_hand():
    u = analyze_answer(TWO_ATTEMPTS, verifier("7"))
    assert (u.tagged, u.attempts, u.reflections, u.verdicts) == (True, 2, 2, 2)
    assert (u.verdicts_judged, u.verdicts_right) == (2, 2)
    assert (u.incorrect_verdicts, u.retries_after_incorrect) == (1, 1)
    assert (u.correct_verdicts, u.stops_after_correct) == (1, 1)
    assert u.attempts_correct == 1
    assert u.final_matches_last_correct is True
    assert u.attempt_results == (False, True)
    c = count_skills(TWO_ATTEMPTS)
    assert (c.attempts, c.reflections, c.verdicts) == (u.attempts, u.reflections, u.verdicts)


def test_misjudged_by_hand():
    u = analyze_answer(MISJUDGED, verifier("7"))
    assert (u.attempts, u.reflections, u.verdicts) == (3, 2, 2)
    # verdict 1 says Incorrect about a right attempt (wrong); verdict 2 says Correct about a wrong one (wrong)
    assert (u.verdicts_judged, u.verdicts_right) == (2, 0)
    assert (u.incorrect_verdicts, u.retries_after_incorrect) == (1, 1)
    # a <sample> follows the Correct verdict: not a stop
    assert (u.correct_verdicts, u.stops_after_correct) == (1, 0)
    assert u.attempts_correct == 1
    assert u.final_matches_last_correct is False  # final 5, last judged-Correct attempt said 9
    assert u.attempt_results == (True, False, False)


def test_untagged_answer_is_one_attempt_without_reflection():
    u = analyze_answer("I think it is <answer>7</answer>", verifier("7"))
    assert (u.tagged, u.attempts, u.reflections, u.verdicts, u.attempts_correct) == (False, 1, 0, 0, 1)
    assert u.final_matches_last_correct is None
    u = analyze_answer("no idea", verifier("7"))
    assert (u.attempts, u.attempts_correct) == (1, 0)


def test_invalid_verdict_and_reflection_before_attempt():
    text = ("<reflect>nothing yet <verdict>Correct</verdict></reflect>"
            "<sample><answer>7</answer></sample><reflect>two <verdict>Correct</verdict><verdict>Incorrect</verdict></reflect>")
    u = analyze_answer(text, verifier("7"))
    assert u.reflections == 2
    assert u.verdicts == 1  # the second reflection has two verdicts: invalid
    assert u.verdicts_judged == 0  # the valid one came before any attempt
    assert u.correct_verdicts == 1 and u.stops_after_correct == 0  # a <sample> follows it
    assert [s.kind for s in parse_steps(text)] == ["reflect", "sample", "reflect"]


def test_aggregate_by_hand():
    a = analyze_answer(TWO_ATTEMPTS, verifier("7")).as_dict()
    b = analyze_answer(MISJUDGED, verifier("7")).as_dict()
    c = analyze_answer("<answer>7</answer>", verifier("7")).as_dict()
    agg = aggregate_usage([a, b, c])
    assert agg["answers"] == 3
    assert agg["tagged_rate"] == pytest.approx(2 / 3)
    assert agg["attempts_per_answer"] == pytest.approx((2 + 3 + 1) / 3)
    assert agg["reflections_per_answer"] == pytest.approx(4 / 3)
    assert agg["verdicts_per_answer"] == pytest.approx(4 / 3)
    assert agg["verdict_accuracy"] == pytest.approx(2 / 4)
    assert agg["retry_after_incorrect"] == pytest.approx(2 / 2)
    assert agg["stop_after_correct"] == pytest.approx(1 / 2)
    assert agg["final_matches_last_correct"] == pytest.approx(1 / 2)
    none = aggregate_usage([c])
    assert none["verdict_accuracy"] is None and none["stop_after_correct"] is None


@pytest.mark.parametrize("text, expected", [
    # in the structure: samples closed, a final answer after the last one; one pool phrase, one made-up line
    ("<think>\n<sample>\n<answer>8</answer>\n</sample>\n<reflect>\nno <verdict>Incorrect</verdict>\n</reflect>\n"
     "That was wrong, so I need another approach.\n<sample>\n<answer>7</answer>\n</sample>\nPuter checking\n"
     "</think>\n\n<answer>7</answer>", (True, 2, 1)),
    # a <sample> left open (cut at the token budget): not in the structure
    ("<think>\n<sample>\n<answer>8</answer>\n</sample>\n<sample>\nStep 1: 3 + 4", (False, 1, 0)),
    # no final answer after the last attempt
    ("<sample>\n<answer>8</answer>\n</sample>\n", (False, 0, 0)),
    # no attempt at all (a base model's plain answer)
    ("so <answer>7</answer>", (False, 1, 0)),
])
def test_structure_of_answers_by_hand(text, expected):
    from skillfactory.evaluation.skills import structure_of

    assert structure_of(text) == expected


def test_aggregate_reports_well_formed_and_glue_rates():
    ok = verifier("7")
    usages = [analyze_answer(t, ok).as_dict() for t in (
        "<sample>\n<answer>7</answer>\n</sample>\nThat was wrong, so I need another approach.\n<answer>7</answer>",
        "<sample>\n<answer>7</answer>\n</sample>\nmade up\n<answer>7</answer>",
        "<sample>\n<answer>7",
        "plain <answer>7</answer>")]
    agg = aggregate_usage(usages)
    assert agg["well_formed_rate"] == pytest.approx(0.5) and agg["glue_lines"] == 2  # the untagged answer has none
    assert agg["glue_verbatim_rate"] == pytest.approx(0.5)
