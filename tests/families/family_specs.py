"""What each real instruct family's tokenizer and config files say, as data.

A spec mirrors the *instruct* checkpoint named in ``reference``: its ``tokenizer_config.json`` (special tokens,
which of them are ``special``, bos/eos/pad, ``add_bos_token``, ``tokenizer_class``, ``clean_up_tokenization_spaces``),
its ``config.json`` (architecture, ``tie_word_embeddings``, bos/eos ids) and its ``generation_config.json`` (the
eos list generation stops on, the sampling defaults). Only the vocabulary is ours (a few hundred BPE pieces) and
the sizes are tiny. Token *ids* keep the real order: tokens the real vocab starts with (Gemma's ``<pad>``=0,
``<eos>``=1, ``<bos>``=2; Phi's ``<unk>``, ``<s>``, ``</s>``) come first, the chat tokens come after the BPE
pieces as in the real files.

Choices where the real files disagree with a naive reading (each is checked by a test):
- ``eos_token`` is the tokenizer_config's. For Qwen2.5/Qwen3 Instruct it is ``<|im_end|>`` and for Llama 3.x
  Instruct ``<|eot_id|>`` (their end of turn), but Gemma-3-it keeps ``<eos>`` and Phi-3.5-mini-instruct keeps
  ``<|endoftext|>``: the end of turn (``end_of_turn``: ``<end_of_turn>``, ``<|end|>``) is only in
  generation_config's eos list (Gemma ``[<eos>, <end_of_turn>]``, Phi ``[<|end|>, <|assistant|>,
  <|endoftext|>]``). Code that stops or strips on ``tokenizer.eos_token`` alone is wrong for those two, as it
  is for the real models.
- Llama 3.1/3.2 Instruct ship **no pad token** (``pad_token`` None); fine-tuning recipes set
  ``<|finetune_right_pad_id|>`` themselves. Use ``dataclasses.replace(spec, pad_token=...)`` to get that.
- Phi-3's chat tokens are ``rstrip=True``: ``"<|end|>\\n<|assistant|>\\n"`` tokenizes to the two tokens,
  the newlines vanish; its ``</s>`` is not special. Its vocabulary is SentencePiece-style (``▁`` for spaces,
  byte fallback, a ``▁`` prepended to every text segment), like the real Llama-2-derived one.
- Gemma 3's vocabulary is SentencePiece-style too (what transformers 5's ``GemmaTokenizer`` rebuilds on load).
- Qwen3 (and R1-Distill) ``<think>``/``</think>`` are added tokens with ``special: false`` (they survive
  ``skip_special_tokens=True``); so are Qwen's ``<tool_call>``, FIM tokens, and R1's ``<｜User｜>``,
  ``<｜Assistant｜>``.
- R1-Distill-Qwen declares ``LlamaTokenizerFast`` with ``add_bos_token: true`` on a ``qwen2`` config;
  transformers 5 loads it as ``Qwen2Tokenizer`` (qwen2 is a "wrong hub class" model type) and keeps the BOS.
- ``model_max_length`` is 2048 for all (the tiny models' ``max_position_embeddings``), not the real 32k-128k.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Token:
    """One added token as ``tokenizer.json`` lists it."""

    content: str
    special: bool = True
    rstrip: bool = False


@dataclass(frozen=True)
class FamilySpec:
    """One instruct family: what its real tokenizer/config files say, and the tiny size we build it at."""

    name: str
    reference: str  # the Hub checkpoint whose files this mirrors
    model_type: str  # config.json model_type; AutoModelForCausalLM picks ``architecture`` from it
    architecture: str
    template: str  # stem of the original template under trl/chat_templates/
    vocab_style: str  # "qwen" | "llama3" byte-level BPE (their regexes) | "gemma" | "llama2" SentencePiece-style
    tokenizer_class: str  # as written in the real tokenizer_config.json
    leading_tokens: tuple[Token, ...]  # ids 0.. before the BPE pieces
    added_tokens: tuple[Token, ...]  # ids after the BPE pieces
    bos_token: str | None
    eos_token: str
    pad_token: str | None
    end_of_turn: str  # what ends an assistant turn: every completion ends with it
    generation_eos: tuple[str, ...]  # generation_config.json eos_token_id, as tokens
    config_eos: tuple[str, ...]  # config.json eos_token_id, as tokens (one -> an int)
    config_bos: str | None
    tie_word_embeddings: bool
    unk_token: str | None = None
    add_bos_token: bool = False  # does tokenizing plain text prepend BOS (the templates write BOS themselves)
    clean_up_tokenization_spaces: bool = False
    padding_side: str = "right"
    extra_special_tokens: tuple[str, ...] = ()  # tokenizer_config additional_special_tokens
    extra_config: dict = field(default_factory=dict)  # more tokenizer_config.json keys, verbatim
    generation: dict = field(default_factory=dict)  # sampling defaults of generation_config.json
    arch: dict = field(default_factory=dict)  # extra config kwargs this architecture needs at a tiny size
    generation_bos: str | None = None  # generation_config bos when it differs from config_bos

    def token_strings(self) -> list[str]:
        return [t.content for t in self.leading_tokens + self.added_tokens]


def _special(*names: str) -> tuple[Token, ...]:
    return tuple(Token(n) for n in names)


def _plain(*names: str) -> tuple[Token, ...]:
    return tuple(Token(n, special=False) for n in names)


# Qwen2.5's 22 added tokens (ids 151643-151664), in order.
_QWEN_VISION = ("<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>", "<|quad_start|>",
                "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                "<|video_pad|>")
_QWEN_CODE = ("<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
              "<|repo_name|>", "<|file_sep|>")
QWEN25_TOKENS = _special("<|endoftext|>", "<|im_start|>", "<|im_end|>", *_QWEN_VISION) + _plain(*_QWEN_CODE)
QWEN3_TOKENS = QWEN25_TOKENS + _plain("<tool_response>", "</tool_response>", "<think>", "</think>")
_QWEN_EXTRA = ("<|im_start|>", "<|im_end|>", *_QWEN_VISION)

# Llama 3's first eleven reserved tokens (ids 128000-128010); the other 245 reserved ones are left out.
LLAMA3_TOKENS = _special(
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
)

# R1-Distill-Qwen's added tokens (ids 151643-151664).
R1_TOKENS = (
    _special("<｜end▁of▁sentence｜>") + _plain("<｜User｜>", "<｜Assistant｜>") + _special("<｜begin▁of▁sentence｜>")
    + _plain("<|EOT|>", "<think>", "</think>") + _special(*_QWEN_VISION[4:]) + _plain(*_QWEN_CODE)
)

# Phi-3.5-mini's chat tokens (ids 32000-32010): all but <|endoftext|> eat the whitespace after them.
PHI35_TOKENS = (Token("<|endoftext|>"),) + tuple(
    Token(n, rstrip=True) for n in ("<|assistant|>", "<|placeholder1|>", "<|placeholder2|>", "<|placeholder3|>",
                                    "<|placeholder4|>", "<|system|>", "<|end|>", "<|placeholder5|>",
                                    "<|placeholder6|>", "<|user|>")
)

_QWEN_ARCH = dict(num_key_value_heads=2)
_QWEN3_ARCH = dict(num_key_value_heads=2, head_dim=16)  # Qwen3 defaults head_dim to 128 whatever the width

_QWEN_COMMON = dict(
    vocab_style="qwen", tokenizer_class="Qwen2Tokenizer", bos_token=None, eos_token="<|im_end|>",
    pad_token="<|endoftext|>", end_of_turn="<|im_end|>", generation_eos=("<|im_end|>", "<|endoftext|>"),
    config_eos=("<|im_end|>",), config_bos="<|endoftext|>", tie_word_embeddings=True, leading_tokens=(),
    extra_special_tokens=_QWEN_EXTRA,
    extra_config={"bos_token": None, "unk_token": None, "errors": "replace", "split_special_tokens": False},
)

_LLAMA_COMMON = dict(
    model_type="llama", architecture="LlamaForCausalLM", vocab_style="llama3",
    tokenizer_class="PreTrainedTokenizerFast", leading_tokens=(), added_tokens=LLAMA3_TOKENS,
    bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token=None, end_of_turn="<|eot_id|>",
    generation_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
    config_eos=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"), config_bos="<|begin_of_text|>",
    add_bos_token=True, clean_up_tokenization_spaces=True,
    extra_config={"model_input_names": ["input_ids", "attention_mask"]},
    generation={"do_sample": True, "temperature": 0.6, "top_p": 0.9},
    arch=dict(num_key_value_heads=2),
)

FAMILIES: dict[str, FamilySpec] = {
    "qwen2_5": FamilySpec(
        name="qwen2_5", reference="Qwen/Qwen2.5-1.5B-Instruct", model_type="qwen2",
        architecture="Qwen2ForCausalLM", template="qwen2_5", added_tokens=QWEN25_TOKENS,
        generation={"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20, "repetition_penalty": 1.1},
        arch=_QWEN_ARCH, **_QWEN_COMMON,
    ),
    "qwen3": FamilySpec(
        name="qwen3", reference="Qwen/Qwen3-1.7B (hybrid thinking)", model_type="qwen3",
        architecture="Qwen3ForCausalLM", template="qwen3", added_tokens=QWEN3_TOKENS,
        generation={"do_sample": True, "temperature": 0.6, "top_p": 0.95, "top_k": 20},
        arch=_QWEN3_ARCH, **_QWEN_COMMON,
    ),
    "qwen3_2507": FamilySpec(
        name="qwen3_2507", reference="Qwen/Qwen3-4B-Instruct-2507", model_type="qwen3",
        architecture="Qwen3ForCausalLM", template="qwen3_instruct_2507", added_tokens=QWEN3_TOKENS,
        generation={"do_sample": True, "temperature": 0.7, "top_p": 0.8, "top_k": 20},
        arch=_QWEN3_ARCH, **_QWEN_COMMON,
    ),
    "llama3_1": FamilySpec(
        name="llama3_1", reference="meta-llama/Llama-3.1-8B-Instruct", template="llama3_1",
        tie_word_embeddings=False, **_LLAMA_COMMON,
    ),
    "llama3_2": FamilySpec(
        name="llama3_2", reference="meta-llama/Llama-3.2-1B-Instruct", template="llama3_2",
        tie_word_embeddings=True, **_LLAMA_COMMON,
    ),
    "gemma3": FamilySpec(
        name="gemma3", reference="google/gemma-3-1b-it", model_type="gemma3_text",
        architecture="Gemma3ForCausalLM", template="gemma3", vocab_style="gemma", tokenizer_class="GemmaTokenizer",
        leading_tokens=_special("<pad>", "<eos>", "<bos>", "<unk>", "<mask>"),
        added_tokens=_special("<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"),
        bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", end_of_turn="<end_of_turn>",
        generation_eos=("<eos>", "<end_of_turn>"), config_eos=("<eos>", "<end_of_turn>"), config_bos="<bos>",
        tie_word_embeddings=True, add_bos_token=True, padding_side="left",
        extra_special_tokens=("<start_of_turn>", "<end_of_turn>"),
        extra_config={"add_eos_token": False, "spaces_between_special_tokens": False,
                      "use_default_system_prompt": False},
        generation={"do_sample": True, "top_k": 64, "top_p": 0.95},
        # head_dim and the query scale default to 256 (the real width); sliding window smaller than the
        # max length so both attention kinds are exercised
        arch=dict(num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, sliding_window=512,
                  layer_types=["sliding_attention", "full_attention"]),
    ),
    "phi3_5": FamilySpec(
        name="phi3_5", reference="microsoft/Phi-3.5-mini-instruct", model_type="phi3",
        architecture="Phi3ForCausalLM", template="phi3_5", vocab_style="llama2", tokenizer_class="LlamaTokenizer",
        leading_tokens=(Token("<unk>"), Token("<s>"), Token("</s>", special=False, rstrip=True)),
        added_tokens=PHI35_TOKENS, bos_token="<s>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        unk_token="<unk>", end_of_turn="<|end|>", generation_eos=("<|end|>", "<|assistant|>", "<|endoftext|>"),
        config_eos=("<|endoftext|>",), config_bos="<s>", tie_word_embeddings=False, padding_side="left",
        extra_config={"add_eos_token": False, "legacy": False, "use_default_system_prompt": False},
        arch=dict(num_key_value_heads=4),
    ),
    "deepseek_r1_distill": FamilySpec(
        name="deepseek_r1_distill", reference="deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B", model_type="qwen2",
        architecture="Qwen2ForCausalLM", template="deepseek_r1_distill", vocab_style="qwen",
        tokenizer_class="LlamaTokenizerFast", leading_tokens=(), added_tokens=R1_TOKENS,
        bos_token="<｜begin▁of▁sentence｜>", eos_token="<｜end▁of▁sentence｜>", pad_token="<｜end▁of▁sentence｜>",
        end_of_turn="<｜end▁of▁sentence｜>", generation_eos=("<｜end▁of▁sentence｜>",),
        config_eos=("<｜end▁of▁sentence｜>",), config_bos="<｜end▁of▁sentence｜>",
        generation_bos="<｜begin▁of▁sentence｜>", tie_word_embeddings=False, add_bos_token=True,
        # unk_token null as in the real file: without it Qwen2Tokenizer adds its default "<|endoftext|>"
        extra_config={"unk_token": None, "add_eos_token": False, "legacy": True, "use_default_system_prompt": False},
        generation={"do_sample": True, "temperature": 0.6, "top_p": 0.95},
        arch=_QWEN_ARCH,
    ),
}


def get_family(name: str) -> FamilySpec:
    """The spec called ``name``, with a "did you mean" for a near miss."""
    if name in FAMILIES:
        return FAMILIES[name]
    import difflib

    near = difflib.get_close_matches(name, FAMILIES, n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    raise KeyError(f"unknown family {name!r}.{hint} Known: {', '.join(FAMILIES)}")
