"""Budget forcing's cut-and-continue text, checked character by character on a scripted backend."""

from __future__ import annotations

import pytest
from eval_fakes import ScriptedBackend

from skillfactory.evaluation.budget_forcing import BudgetForcingConfig, budget_force
from skillfactory.generation.base import SamplingParams

FIRST = "<think>\n<sample>\nfirst try <answer>8</answer>\n</sample>\n</think>\n\nDone. <answer>8</answer>"


def thinking_script(req, i, params):
    """A model that closes its thinking after each attempt; attempt k >= 2 is right (7)."""
    if req.prefix == "":
        return FIRST
    k = req.prefix.count("<sample>") + 0
    return f"try {k} <answer>7</answer>\n</sample>\n</think>\n\nFinal: <answer>7</answer>"


MSGS = [[{"role": "user", "content": "What is 3 + 4?"}]]
CFG = BudgetForcingConfig(enabled=True)


def run(backend, budget, **kw):
    return budget_force(backend, MSGS, SamplingParams(max_new_tokens=50, temperature=0.0), CFG,
                        max_forced=budget, **kw)[0]


def test_budget_zero_is_plain_generation():
    b = ScriptedBackend(thinking_script)
    r = run(b, 0)
    assert r.text == FIRST and r.forced == 0 and r.closed_thinking
    assert len(b.calls) == 1


def test_one_forced_continuation_cuts_at_think_and_appends_sample():
    b = ScriptedBackend(thinking_script)
    r = run(b, 1)
    cut = "<think>\n<sample>\nfirst try <answer>8</answer>\n</sample>\n" + "\n<sample>\n"
    assert b.calls[1][0][0].prefix == cut  # the second round continues from the cut text
    assert r.text == cut + "try 2 <answer>7</answer>\n</sample>\n</think>\n\nFinal: <answer>7</answer>"
    assert r.forced == 1 and not r.forced_answer
    assert r.n_tokens == len(r.text.split())
    assert r.generated_tokens == len(FIRST.split()) + len(r.rounds[1].split())


def test_two_forced_continuations():
    b = ScriptedBackend(thinking_script)
    r = run(b, 2)
    expected = ("<think>\n<sample>\nfirst try <answer>8</answer>\n</sample>\n\n<sample>\n"
                "try 2 <answer>7</answer>\n</sample>\n\n<sample>\n"
                "try 3 <answer>7</answer>\n</sample>\n</think>\n\nFinal: <answer>7</answer>")
    assert r.text == expected and r.forced == 2 and len(b.calls) == 3
    assert r.text.count("</think>") == 1


def test_custom_continuation():
    cfg = BudgetForcingConfig(enabled=True, continuation="\nWait, let me try again.\n<sample>\n")
    b = ScriptedBackend(thinking_script)
    r = budget_force(b, MSGS, SamplingParams(max_new_tokens=50), cfg, max_forced=1)[0]
    assert "</sample>\n\nWait, let me try again.\n<sample>\ntry 2" in r.text


def test_base_model_without_think_is_a_noop():
    b = ScriptedBackend(lambda req, i, p: "it is <answer>7</answer>")
    r = run(b, 4)
    assert r.text == "it is <answer>7</answer>" and r.forced == 0 and not r.closed_thinking
    assert len(b.calls) == 1


def test_token_budget_forces_continuations_then_the_answer():
    def script(req, i, params):
        if req.prefix.endswith("<answer>"):
            return "7</answer>"
        if req.prefix == "":
            return "<think> <sample> w w w </sample> </think> <answer>8</answer>"
        return "w w w w </sample> </think> <answer>7</answer>"

    b = ScriptedBackend(script)
    r = budget_force(b, MSGS, SamplingParams(max_new_tokens=50), CFG, max_forced=16, token_budget=20)[0]
    # by hand (tokens = words): kept 6 -> force (7); +5 = 12 -> force (13); cap 7: +5 = 18 -> force (19);
    # cap 1: "w" -> 20 tokens, no </think>, budget spent mid-thought -> force the answer
    caps = [call[1].max_new_tokens for call in b.calls]
    assert caps == [20, 13, 7, 1, CFG.answer_tokens]
    assert r.forced == 3 and r.forced_answer
    assert r.text.endswith("\n<sample>\nw\n</think>\n\n<answer>7</answer>")
    assert r.text.count("</think>") == 1


def test_lockstep_batches_units_together():
    b = ScriptedBackend(thinking_script)
    res = budget_force(b, MSGS * 3, SamplingParams(max_new_tokens=50), CFG, max_forced=1)
    assert len(b.calls) == 2 and all(len(reqs) == 3 for reqs, _ in b.calls)
    assert len({r.text for r in res}) == 1


def test_config_validation():
    with pytest.raises(ValueError):
        BudgetForcingConfig(budgets=[-1])
    assert BudgetForcingConfig(budgets=[4, 0, 2, 2]).budgets == [0, 2, 4]
