"""Acceptance of the SFT stage on the micro toy model: SFT on silver traces lowers the loss, and afterwards at
least 80% of sampled answers (temperature 1) have the trace structure - an attempt in <sample>, a <reflect>
with a verdict, and a final <answer> after </think>.

The traces are built from records here (one attempt + one Correct reflection per question) so this test does not
depend on the sampling/reflection stages. Settings measured on the micro model (hidden 64, 2 layers): LR 1e-2,
batch 4, 640 steps give 16/16 structured samples (400 steps gave 6/16 with another build of micro); ~35 s.
"""

from __future__ import annotations

import json

import pytest

from skillfactory.evaluation.skills import count_skills
from skillfactory.tasks import extract_answer, get_task

pytestmark = pytest.mark.slow


def _trace(task, q) -> dict:
    body = (f"<think>\n<sample>\n{q.gold}\n</sample>\n<reflect>\n<verdict>Correct</verdict>\n</reflect>\n</think>"
            f"\n\n<answer>\n{q.gold}\n</answer>")
    return {"messages": [{"role": "user", "content": task.prompt(q, "original")},
                         {"role": "assistant", "content": body}]}


def structured(text: str) -> bool:
    c = count_skills(text)
    head, sep, tail = text.partition("</think>")
    return bool(sep) and c.attempts >= 1 and c.reflections >= 1 and c.verdicts >= 1 and extract_answer(tail) is not None


def test_sft_on_traces_teaches_the_trace_structure(tmp_path, micro_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from skillfactory.training.sft import SFTRunConfig, run_sft

    task = get_task("countdown", num_args=3, min_number=1, max_number=20, operators="+-")
    qs = task.generate(24, seed=1)
    traces = tmp_path / "traces.jsonl"
    traces.write_text("".join(json.dumps(_trace(task, q)) + "\n" for q in qs[:16]))

    summary = run_sft(SFTRunConfig(model=str(micro_model), traces=str(traces), out=str(tmp_path / "sft"),
                                   preset="tiny",
                                   learning_rate=1e-2, lr_scheduler="constant_with_warmup", per_device_batch_size=4, global_batch_size=4,
                                   epochs=160, save_steps=10**6))
    assert summary["steps"] == 640
    assert summary["last_loss"] < summary["first_loss"] / 4

    tok = AutoTokenizer.from_pretrained(summary["final_model"], padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(summary["final_model"])
    prompts = [tok.apply_chat_template([{"role": "user", "content": task.prompt(q, "original")}], tokenize=False,
                                       add_generation_prompt=True) for q in qs[16:]]
    enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    out = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, max_new_tokens=80, num_return_sequences=2)
    # tag tokens are special tokens: decode without skipping them, then cut at the end of the turn
    texts = [t.split(tok.eos_token)[0] for t in tok.batch_decode(out[:, enc["input_ids"].shape[1]:])]
    share = sum(map(structured, texts)) / len(texts)
    assert share >= 0.8, (share, [t for t in texts if not structured(t)][:3])
    assert not structured(qs[0].gold) and structured(_trace(task, qs[0])["messages"][1]["content"])
