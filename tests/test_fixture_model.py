def test_tiny_model_loads_and_templates(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    msgs = [{"role": "user", "content": "What is 12 times 34?"}, {"role": "assistant", "content": "<answer>408</answer>"}]
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    mask = out["assistant_masks"]
    assert sum(mask) > 0
    # the assistant span ends with the end-of-turn token, so the model learns to stop
    last = max(i for i, m in enumerate(mask) if m)
    assert out["input_ids"][last] == tok.eos_token_id
    assert tok.decode(tok("1234")["input_ids"]) == "1234"
    assert len(tok("1234")["input_ids"]) == 4
    assert model.config.model_type == "llama"


def test_trace_tags_survive_skip_special_tokens(tiny_model_dir):
    """Trainers decode completions with skip_special_tokens=True; the tags the verifier reads must survive."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "<think>\n<sample>\n3 + 4\n</sample>\n</think>\n<answer>7</answer>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids("<answer>") in ids  # still one token each
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(tok("<|im_end|>", add_special_tokens=False)["input_ids"], skip_special_tokens=True) == ""
