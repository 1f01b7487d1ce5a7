"""Each family's tiny model loads like the real checkpoint, and a fitted one answers as scripted."""

from __future__ import annotations

import json
import shutil

import pytest

from families.family_models import SAMPLE_TEXT, build_family_model, chat_pair, fit_responses, template_text
from families.family_specs import FAMILIES, get_family

NAMES = list(FAMILIES)
QA = [("What is 57 - 22?", "Step 1: 57 - 22 = 35\n<answer>35</answer>"),
      ("What is 12 times 34?", "Step 1: 12 * 34 = 408\n<answer>408</answer>")]
ROUND_TRIP = [SAMPLE_TEXT, "  two  spaces\tand tab ", " leading space", "a\n\n\nb", "naïve café → 😀 日本", "x , y . z ?"]


def _template_kwargs(name: str) -> dict:
    return {"date_string": "26 Jul 2024"} if name.startswith("llama") else {}  # llama3_2 writes today's date


def _reply(name: str, answer: str) -> str:
    """What the real model writes: Qwen3 thinks first; R1's prompt already opened the think block."""
    if name == "qwen3":
        return "<think>\nLet me compute it.\n</think>\n\n" + answer
    if name == "deepseek_r1_distill":
        return "Let me compute it.\n</think>\n\n" + answer
    return answer


def _pairs(tok, name: str, qa=QA) -> list[tuple[str, str]]:
    return [chat_pair(tok, name, q, _reply(name, a), **_template_kwargs(name)) for q, a in qa]


@pytest.mark.parametrize("name", NAMES)
def test_tokenizer_mirrors_the_family(family_models, name):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    spec = FAMILIES[name]
    folder = family_models.base(name)
    tok = AutoTokenizer.from_pretrained(folder)

    for text in ROUND_TRIP:
        assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text
    ids = tok(SAMPLE_TEXT, add_special_tokens=False)["input_ids"]
    # transformers 5 rebuilds Qwen2Tokenizer/GemmaTokenizer from vocab+merges: it must tokenize like the file
    assert ids == Tokenizer.from_file(str(folder / "tokenizer.json")).encode(SAMPLE_TEXT, add_special_tokens=False).ids
    with_bos = tok(SAMPLE_TEXT)["input_ids"]
    assert (with_bos[0] == tok.bos_token_id and with_bos[1:] == ids) if spec.add_bos_token else with_bos == ids

    assert tok.chat_template == template_text(spec)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (spec.bos_token, spec.eos_token, spec.pad_token)
    assert tok.eos_token_id is not None and (spec.pad_token is None or tok.pad_token_id is not None)
    added = {str(t): t for t in tok.added_tokens_decoder.values()}
    for t in spec.leading_tokens + spec.added_tokens:
        assert len(tok(t.content, add_special_tokens=False)["input_ids"]) == 1, t.content
        assert (added[t.content].special, added[t.content].rstrip) == (t.special, t.rstrip), t.content

    chat = [{"role": "user", "content": "What is 57 - 22?"}, {"role": "assistant", "content": "<answer>35</answer>"}]
    text = tok.apply_chat_template(chat, tokenize=False, **_template_kwargs(name))
    assert "What is 57 - 22?" in text and "<answer>35</answer>" + spec.end_of_turn in text
    if "bos_token" in template_text(spec):  # Llama 3, Gemma 3 and R1 write BOS once; Qwen and Phi never
        assert text.startswith(spec.bos_token) and text.count(spec.bos_token) == 1
    rendered = tok.apply_chat_template(chat, tokenize=True, return_dict=True, **_template_kwargs(name))["input_ids"]
    assert rendered == tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("name", NAMES)
def test_model_is_the_real_architecture(family_models, name):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = FAMILIES[name]
    folder = family_models.base(name)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == spec.architecture
    assert (folder / "model.safetensors").exists()
    assert model.config.vocab_size == len(tok) and model.config.max_position_embeddings == 2048
    assert model.config.tie_word_embeddings == spec.tie_word_embeddings
    eos = model.generation_config.eos_token_id
    assert (eos if isinstance(eos, list) else [eos]) == tok.convert_tokens_to_ids(list(spec.generation_eos))
    assert tok.convert_tokens_to_ids(spec.end_of_turn) in tok.convert_tokens_to_ids(list(spec.generation_eos))
    with torch.no_grad():
        logits = model(**tok(SAMPLE_TEXT, return_tensors="pt")).logits
    assert logits.shape[-1] == len(tok) and torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NAMES)
def test_fitted_model_answers_as_scripted(family_models, name):
    """Greedy ``generate`` (single prompt, the model's own eos list) reproduces each completion and stops."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(family_models.base(name))
    pairs = _pairs(tok, name)
    folder = family_models.fitted(name, pairs)
    model = AutoModelForCausalLM.from_pretrained(folder)
    eos = model.generation_config.eos_token_id
    for (prompt, completion), (_, answer) in zip(pairs, QA):
        enc = tok(prompt, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**enc, do_sample=False, max_new_tokens=80)
        new = out[0, enc["input_ids"].shape[1]:].tolist()
        assert tok.decode(new) == completion
        assert new[-1] in (eos if isinstance(eos, list) else [eos])
        assert tok.decode(new, skip_special_tokens=True) == _reply(name, answer)


def test_thinking_prompts(family_models):
    """Qwen3 thinks unless told not to; R1-Distill's generation prompt opens the think block."""
    from transformers import AutoTokenizer

    def prompt(name, **kw):
        tok = AutoTokenizer.from_pretrained(family_models.base(name))
        return tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                       add_generation_prompt=True, **kw)

    assert prompt("qwen3").endswith("<|im_start|>assistant\n")
    assert prompt("qwen3", enable_thinking=False).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert prompt("qwen3_2507", enable_thinking=False).endswith("<|im_start|>assistant\n")
    assert prompt("deepseek_r1_distill").endswith("<｜Assistant｜><think>\n")


def test_phi_chat_tokens_eat_the_newline_after_them(family_models):
    """Real Phi-3 behaviour (rstrip=True): the template's newlines after <|end|>/<|assistant|> vanish."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(family_models.base("phi3_5"))
    assert tok("<|end|>\n<|assistant|>\n", add_special_tokens=False)["input_ids"] == tok.convert_tokens_to_ids(
        ["<|end|>", "<|assistant|>"])


def test_fit_is_deterministic(family_models, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    base = family_models.base("phi3_5")
    pairs = _pairs(AutoTokenizer.from_pretrained(base), "phi3_5")
    steps, weights = [], []
    for run in ("a", "b"):
        shutil.copytree(base, tmp_path / run)
        steps.append(fit_responses(tmp_path / run, pairs))
        weights.append(load_file(str(tmp_path / run / "model.safetensors")))
    assert steps[0] == steps[1]
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])


def test_fit_refuses_what_it_cannot_do(family_models, tmp_path):
    from transformers import AutoTokenizer

    folder = shutil.copytree(family_models.base("qwen2_5"), tmp_path / "m")
    prompt, completion = _pairs(AutoTokenizer.from_pretrained(folder), "qwen2_5")[0]
    with pytest.raises(ValueError, match="end-of-turn"):
        fit_responses(folder, [(prompt, completion.removesuffix("<|im_end|>"))])
    with pytest.raises(RuntimeError, match="after 5 steps"):
        fit_responses(folder, [(prompt, completion)], max_steps=5, check_every=5)


def test_unknown_family_suggests_the_near_one(tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'qwen2_5'"):
        get_family("qwen25")
    with pytest.raises(KeyError, match="Did you mean"):
        build_family_model("gemma_3", tmp_path)


def test_generation_config_mirrors_the_real_one(family_models):
    """Sampling defaults travel with the model, as on the Hub (a pipeline must pass its own settings)."""
    cfg = json.loads((family_models.base("qwen2_5") / "generation_config.json").read_text())
    assert cfg["do_sample"] is True and cfg["temperature"] == 0.7 and cfg["top_k"] == 20
    assert "pad_token_id" not in json.loads((family_models.base("llama3_1") / "generation_config.json").read_text())
