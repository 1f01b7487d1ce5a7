"""The family matrix: sample -> reflect -> traces -> SFT -> GRPO -> eval on a tiny model of every instruct family
(its real chat template and special tokens), through ``skillfactory run`` - the code a real run uses.

A random model solves nothing, so each one is first fitted to answer the run's own prompts the way an instruct
model of that family would (``fit_responses``): two variants right, two wrong, and true verdicts when asked to
check; Qwen3 in its default thinking mode opens every answer with ``<think>...</think>``, a DeepSeek-R1 distill
continues the ``<think>`` its generation prompt opens. Then the pipeline runs on it untouched, greedy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from families.family_models import chat_pair
from families.family_specs import FAMILIES, get_family

from skillfactory.prompting import VARIANTS, reflection_prompt
from skillfactory.tasks import get_task

pytestmark = pytest.mark.slow

PARAMS = {"num_args": 2, "min_number": 1, "max_number": 9, "min_target": 1, "max_target": 30, "operators": "+-"}
RIGHT = ("original", "plan_and_execute")  # the variants the fitted model answers right
#: chat-template arguments a recipe would set: Llama 3.2 writes today's date unless given one
TEMPLATE_KWARGS = {"llama3_2": {"date_string": "26 Jul 2024"}}
TEMPLATES = Path(__import__("trl").__file__).parent / "chat_templates"


def _scripted(family: str, task, q) -> list[tuple[str, str]]:
    """(user turn, reply) pairs: one attempt per variant, and one true check of each attempt."""
    a, b = q.fields["numbers"]
    think = {"qwen3": "<think>\nI add the two numbers.\n</think>\n\n",
             "deepseek_r1_distill": "I add the two numbers.\n</think>\n\n"}.get(family, "")
    pairs = []
    for v in VARIANTS:
        answer = q.gold if v in RIGHT else f"{a} * {b}"
        attempt = f"{think}Step 1: {a} and {b}.\n<answer>\n{answer}\n</answer>"
        verdict = "Correct" if v in RIGHT else "Incorrect"
        pairs.append((task.prompt(q, v), attempt))
        pairs.append((reflection_prompt(task.statement(q), attempt),
                      f"I check {answer}.\n<verdict>{verdict}</verdict>"))
    return pairs


def _recipe(tmp: Path, family: str, model: Path) -> Path:
    entry = {"label": "countdown-2", "task": "countdown", "params": PARAMS, "n": 1, "samples": 1,
             "max_new_tokens": 16}
    recipe = {
        "name": f"family-{family}", "out": str(tmp / "run"), "base_model": {"path": str(model)},
        "backend": {"name": "hf", "options": {"batch_size": 16}},
        "chat_template_kwargs": TEMPLATE_KWARGS.get(family, {}),
        "task": {"name": "countdown", "params": PARAMS}, "seeds": [0], "arms": ["skillfactory"],
        "sample": {"n": 1, "per_variant": 1, "temperature": 0, "max_new_tokens": 64},
        "reflect": {"per_sample": 1, "temperature": 0, "max_new_tokens": 64},
        "traces": {"formats": ["*C_full"], "max_responses": 2},
        "sft": {"preset": "tiny", "max_steps": 2, "per_device_batch_size": 2, "global_batch_size": 2},
        "grpo": {"preset": "tiny", "max_steps": 1, "n_questions": 2, "num_generations": 2,
                 "per_device_batch_size": 4, "global_batch_size": 4, "max_completion_length": 16},
        "eval": {"suite": [entry], "budget_forcing": {"enabled": False}},
    }
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _special_strings(tok) -> set[str]:
    from skillfactory.chat import special_token_ids

    return {tok.convert_ids_to_tokens(i) for i in special_token_ids(tok)}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_stage_on_every_family(family, family_models, tmp_path):
    from rich.console import Console
    from transformers import AutoTokenizer

    from skillfactory.pipeline import run_recipe
    from skillfactory.training.sft import load_traces, tokenize_traces

    spec, kwargs = get_family(family), TEMPLATE_KWARGS.get(family, {})
    task = get_task("countdown", **PARAMS)
    (q,) = task.generate(1, 0, "train")  # the sampling stage's question (n=1, seed 0)
    tok = AutoTokenizer.from_pretrained(family_models.base(family))
    pairs = [chat_pair(tok, family, user, reply, **kwargs) for user, reply in _scripted(family, task, q)]
    model = family_models.fitted(family, pairs)

    run_recipe(_recipe(tmp_path, family, model), console=Console(file=open(tmp_path / "log.txt", "w"), width=120))
    root = tmp_path / "run" / "s0"

    # generation stopped at the family's end of turn, which never enters the text
    samples = [json.loads(line) for line in (root / "sample" / "samples.jsonl").open()]
    assert len(samples) == 4 and sum(s["correct"] for s in samples) == 2
    specials = _special_strings(tok)
    assert not any(t in s["text"] for s in samples for t in specials)
    # traces exist (Qwen3's own <think> block included), and hold no special token
    traces = [json.loads(line) for line in (root / "traces-skillfactory" / "traces.jsonl").open()]
    assert traces, f"{family}: no traces"
    text = "".join(m["content"] for t in traces for m in t["messages"])
    assert not [t for t in specials if t in text]
    # what SFT trains on: the trained span ends with the family's end-of-turn token, once per assistant turn
    examples, bad = tokenize_traces(tok, load_traces(str(root / "traces-skillfactory" / "traces.jsonl")), kwargs)
    eot = tok.convert_tokens_to_ids(spec.end_of_turn)
    assert not bad
    for ex in examples:
        trained = [i for i, m in zip(ex["input_ids"], ex["completion_mask"]) if m]
        assert trained[-1] == eot and trained.count(eot) == 1
    sft = json.loads((root / "sft-skillfactory" / "summary.json").read_text())
    assert sft["trained_on"] == len(traces) and sft["skipped_special_tokens"] == 0
    # the trained models keep the family's original template
    original = (TEMPLATES / f"{spec.template}.jinja").read_text()
    for stage in ("sft-skillfactory", "grpo-skillfactory"):
        assert AutoTokenizer.from_pretrained(root / stage / "final").chat_template == original, stage
    for label in ("base", "skillfactory"):
        assert json.loads((root / f"eval-{label}" / "results.json").read_text())["label"] == label


@pytest.mark.timeout(300)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sft_command_trains_every_family_and_keeps_its_template(family, family_models, tmp_path, monkeypatch):
    """The CLI contract: `skillfactory sft --model DIR --traces FILE --out OUT --max-steps 2` on any family."""
    import sys

    from transformers import AutoTokenizer

    from skillfactory.cli import main

    body = "<think>\n<sample>\nStep 1: 3 + 4 = 7\n</sample>\n<reflect>\n<verdict>Correct</verdict>\n</reflect>\n</think>"
    rows = [{"messages": [{"role": "user", "content": f"Use 3, 4 to make {7 + i}."},
                          {"role": "assistant", "content": f"{body}\n\n<answer>\n3 + 4\n</answer>"}]} for i in range(4)]
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "sft"
    monkeypatch.setattr(sys, "argv", ["skillfactory", "sft", "--model", str(family_models.base(family)), "--traces",
                                      str(traces), "--out", str(out), "--max-steps", "2", "--preset", "tiny"])
    try:
        main()
    except SystemExit as e:  # typer exits 0 after a command, or returns
        assert e.code in (0, None)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["trained_on"] == 4
    original = (TEMPLATES / f"{get_family(family).template}.jinja").read_text()
    assert AutoTokenizer.from_pretrained(out / "final").chat_template == original
