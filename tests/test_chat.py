"""The one chat mechanism (skillfactory.chat) on every family's real template, as TRL ships them."""

from __future__ import annotations

from pathlib import Path

import pytest

from skillfactory.chat import ChatTemplateError, end_of_turn, mask_problem, special_token_ids, tokenize_example, \
    training_texts

TEMPLATES = Path(__import__("trl").__file__).parent / "chat_templates"
#: family template -> (its end-of-turn token, what the template writes after the assistant turn)
FAMILIES = {
    "qwen2_5": "<|im_end|>", "qwen3": "<|im_end|>", "qwen3_instruct_2507": "<|im_end|>", "llama3_1": "<|eot_id|>",
    "llama3_2": "<|eot_id|>", "gemma3": "<end_of_turn>", "phi3_5": "<|end|>", "deepseek_r1_distill": "<｜end▁of▁sentence｜>",
}
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|start_header_id|>",
            "<|end_header_id|>", "<|eot_id|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<|user|>",
            "<|assistant|>", "<|end|>", "<｜begin▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜end▁of▁sentence｜>"]


@pytest.fixture(scope="module")
def base_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token=None))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    text = ["<think> <sample> Step 1: 3 + 4 = 7 <answer>7</answer> <verdict>Correct</verdict> user assistant"] * 20
    tk.train_from_iterator(text, trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import decoders

    tk.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>",
                                  additional_special_tokens=[t for t in SPECIALS if t not in ("<bos>", "<eos>")])
    return tok


def _with_template(tok, family: str):
    tok.chat_template = (TEMPLATES / f"{family}.jinja").read_text()
    return tok


CHAT = [{"role": "user", "content": "Use 3, 4 to make 7."},
        {"role": "assistant", "content": "<think>\n<sample>\n3 + 4 = 7\n</sample>\n</think>\n<answer>3 + 4</answer>"}]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_trains_on_its_generation_prompt_and_its_end_of_turn(base_tokenizer, family):
    tok = _with_template(base_tokenizer, family)
    for kwargs in ({}, {"enable_thinking": False}):
        eot = end_of_turn(tok, kwargs)
        assert eot.text.endswith(FAMILIES[family]) and eot.token_id == tok.convert_tokens_to_ids(FAMILIES[family])
        prompt, completion = training_texts(tok, CHAT, kwargs, eot)
        # the prompt is what the sampler renders; the completion is the text, then the end of turn, nothing after
        assert prompt == tok.apply_chat_template(CHAT[:1], add_generation_prompt=True, tokenize=False, **kwargs)
        assert completion.endswith(FAMILIES[family]) and "<answer>3 + 4</answer>" in completion
        ex = tokenize_example(tok, CHAT, kwargs, eot)
        assert mask_problem(ex, eot, special_token_ids(tok)) is None
        trained = [i for i, m in zip(ex["input_ids"], ex["completion_mask"]) if m]
        assert trained.count(eot.token_id) == 1 and trained[-1] == eot.token_id
        assert tok.decode(ex["input_ids"][: len(ex["input_ids"]) - len(trained)]) == prompt


def test_a_thinking_generation_prompt_is_not_followed_by_a_second_think(base_tokenizer):
    tok = _with_template(base_tokenizer, "deepseek_r1_distill")  # its generation prompt ends with "<think>\n"
    prompt, completion = training_texts(tok, CHAT)
    assert prompt.endswith("<think>\n") and completion.startswith("<sample>")


def test_qwen3_thinking_switch_changes_the_prompt_not_the_completion(base_tokenizer):
    tok = _with_template(base_tokenizer, "qwen3")
    on, c_on = training_texts(tok, CHAT)
    off, c_off = training_texts(tok, CHAT, {"enable_thinking": False})
    assert off == on + "<think>\n\n</think>\n\n" and c_on == c_off


def test_special_tokens_inside_the_text_are_a_problem(base_tokenizer):
    tok = _with_template(base_tokenizer, "qwen2_5")
    eot = end_of_turn(tok)
    bad = [CHAT[0], {"role": "assistant", "content": "7<|im_end|> more"}]
    assert "special token" in mask_problem(tokenize_example(tok, bad, eot=eot), eot, special_token_ids(tok))


def test_a_template_without_an_end_token_gets_one_line_naming_the_fix(base_tokenizer):
    tok = _with_template(base_tokenizer, "qwen2_5")
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(ChatTemplateError, match="end-of-turn") as err:
        end_of_turn(tok)
    assert "\n" not in str(err.value).strip()
