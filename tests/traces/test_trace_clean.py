"""Text hygiene of the trace builder: a thinking model's leading <think> block is unwrapped, chat special tokens
never reach a trace (they are refused and counted), trace tags elsewhere are still refused."""

from __future__ import annotations

import json

import pytest
from trace_helpers import TASK

from skillfactory.records import Question, Reflection, Sample, write_jsonl
from skillfactory.traces.build import TraceConfig, build_traces
from skillfactory.traces.clean import CHAT_SCREEN, TextScreen, unwrap_thinking

ANSWER = "<answer>5</answer>"


@pytest.mark.parametrize("text, expected", [
    ("<think>\n2 plus 3 is 5\n</think>\n\n" + ANSWER, "2 plus 3 is 5\n\n" + ANSWER),  # Qwen3 default template
    ("<think>\n\n</think>\n\n" + ANSWER, ANSWER),  # enable_thinking=False: an empty block
    ("2 plus 3 is 5\n</think>\n\n" + ANSWER, "2 plus 3 is 5\n\n" + ANSWER),  # the prompt held "<think>\n"
    ("  <think>only thoughts</think>", "only thoughts"),
    ("no thinking " + ANSWER, "no thinking " + ANSWER),
    ("first " + ANSWER + " <think>late</think>", "first " + ANSWER + " <think>late</think>"),  # not leading
    ("<think>unclosed " + ANSWER, "<think>unclosed " + ANSWER),
])
def test_unwrap_thinking(text, expected):
    assert unwrap_thinking(text) == expected


@pytest.mark.parametrize("text, reason", [
    ("<think>a</think> b </think>", "tag_in_text"),  # a second closer after the leading block
    ("<think>a <sample>x</sample></think> " + ANSWER, "tag_in_text"),  # trace tags inside the reasoning
    ("fine <think>late</think> " + ANSWER, "tag_in_text"),
    ("<think>\nok\n</think>\n\n" + ANSWER, None),
])
def test_trace_tags_outside_a_leading_block_are_refused(text, reason):
    assert CHAT_SCREEN.refusal(CHAT_SCREEN.clean(text)) == reason


@pytest.mark.parametrize("token", ["<|im_end|>", "<|endoftext|>", "<|im_start|>", "<|eot_id|>", "<end_of_turn>",
                                   "<|end|>", "<｜end▁of▁sentence｜>"])
def test_chat_special_tokens_of_every_family_are_refused(token):
    assert CHAT_SCREEN.refusal("2 + 3 = 5 " + ANSWER + token) == "special_token"
    assert CHAT_SCREEN.refusal("2 + 3 = 5 " + ANSWER) is None


def test_a_tokenizer_adds_its_own_special_tokens_but_never_trace_tags(tiny_model_dir):
    screen = TextScreen.for_tokenizer(str(tiny_model_dir))
    assert "<|pad|>" in screen.special_tokens and "<|pad|>" not in CHAT_SCREEN.special_tokens
    assert screen.refusal("x <|pad|>") == "special_token" and CHAT_SCREEN.refusal("x <|pad|>") is None
    assert TextScreen(["<answer>", "</s>"]).refusal(ANSWER) is None  # a tokenizer that marks <answer> special


def _records(texts: list[str], reflection: str = "Looks right. <verdict>Correct</verdict>"):
    q = Question(id="add/x", task=TASK, fields={"a": 2, "b": 3}, gold="5")
    samples = [Sample(question=q, variant="original", index=i, prompt="p", text=t, extracted="5", correct=True,
                      why="ok", n_tokens=3, finish_reason="stop") for i, t in enumerate(texts)]
    reflections = [Reflection(sample_id=s.id, question_id=q.id, index=0, text=reflection, verdict=True, truth=True,
                              kept=True, n_tokens=2, finish_reason="stop") for s in samples]
    return samples, reflections


def _build(tmp_path, samples, reflections, **kw):
    s, r = tmp_path / "samples.jsonl", tmp_path / "reflections.jsonl"
    write_jsonl(s, samples)
    write_jsonl(r, reflections)
    cfg = TraceConfig(samples=str(s), reflections=str(r), formats=["*C_full"], max_responses=3,
                      out=str(tmp_path / "out"), **kw)
    summary = build_traces(cfg, progress=False)
    traces = [json.loads(line) for line in (tmp_path / "out" / "traces.jsonl").read_text().splitlines()]
    return summary, [t["messages"][1]["content"] for t in traces]


def test_a_thinking_model_gives_traces_with_its_reasoning_as_plain_text(tmp_path):
    samples, reflections = _records([f"<think>\nTry {i}: 2 plus 3 is 5.\n</think>\n\n{ANSWER}" for i in range(3)],
                                    reflection="<think>\nCheck: 2+3=5.\n</think>\n\nYes. <verdict>Correct</verdict>")
    summary, traces = _build(tmp_path, samples, reflections)
    assert summary["traces"] == 3 and summary["attempts"]["usable"] == 3
    for text in traces:
        body = text.split("<think>\n", 1)[1].rsplit("</think>", 1)[0]
        assert "<think>" not in body and "</think>" not in body  # only the trace's own <think> is left
    assert "<sample>\nTry 0: 2 plus 3 is 5.\n\n" + ANSWER + "\n</sample>" in traces[0]
    assert "<reflect>\nCheck: 2+3=5.\n\nYes. <verdict>Correct</verdict>\n</reflect>" in traces[0]


def test_special_tokens_never_enter_a_trace_and_are_counted(tmp_path):
    texts = ["2 plus 3 is 5 " + ANSWER + "<|im_end|>", "2 plus 3 is 5 " + ANSWER, "x <|pad|> " + ANSWER]
    samples, reflections = _records(texts)
    reflections.append(Reflection(sample_id=samples[1].id, question_id="add/x", index=1, truth=True, kept=True,
                                  text="Right. <verdict>Correct</verdict><|eot_id|>", verdict=True, n_tokens=2,
                                  finish_reason="stop"))
    summary, traces = _build(tmp_path, samples, reflections, tokenizer=None)
    assert summary["attempts"]["unusable:special_token"] == 1 and summary["reflections"]["special_token"] == 1
    assert traces and not any("<|im_end|>" in t or "<|eot_id|>" in t for t in traces)


def test_the_tokenizer_of_the_build_refuses_its_own_special_tokens(tmp_path, tiny_model_dir):
    samples, reflections = _records(["2 plus 3 is 5 " + ANSWER, "x <|pad|> " + ANSWER])
    summary, traces = _build(tmp_path, samples, reflections, tokenizer=str(tiny_model_dir))
    assert summary["attempts"]["unusable:special_token"] == 1
    assert traces and not any("<|pad|>" in t for t in traces)
