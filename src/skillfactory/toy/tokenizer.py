"""The tiny model's tokenizer: a small BPE trained with ``tokenizers`` on our own corpus.

Why these choices:
- digits are split one per token, so arithmetic is learnable digit by digit;
- chat turns use ChatML special tokens (``<|im_start|>``, ``<|im_end|>``) like Qwen2.5, so the pipeline treats
  the toy model and a real instruct model the same way;
- the trace tags (``<answer>``, ``<sample>``, ``<reflect>``, ``<verdict>``, ``<think>`` and their closers) are
  single added tokens, so counting and forcing them is exact; they are *not* special tokens, because trainers
  decode completions with ``skip_special_tokens=True`` (TRL's GRPO does): a special ``<answer>`` would vanish
  from every completion and the verifier reward would be 0 whatever the model wrote;
- the chat template wraps every assistant turn, end-of-turn token included, in ``{% generation %}`` markers,
  which TRL's assistant-only loss needs (without the end token inside, a model never learns to stop).
- optionally (``phrases``), each fixed sentence of the pipeline's prompts ("Give your final answer inside <answer>
  </answer> tags.", the reflection instructions, a task's rules) is ONE added token. The model only ever reads
  these sentences, never writes them; as single tokens they cost a 1M-parameter model no compute and no
  attention span, and the question's numbers sit a few tokens from where the answer copies them (a countdown
  prompt: 85 -> 27 tokens);
The model uses a Llama architecture: transformers 5 forces Qwen2's own tokenizer class on ``model_type:
qwen2`` folders, which would silently change a custom tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

BOS, EOS, PAD = "<|endoftext|>", "<|im_end|>", "<|pad|>"
IM_START = "<|im_start|>"
SPECIAL_TOKENS = [PAD, BOS, IM_START, EOS]
TAG_TOKENS = [
    "<answer>", "</answer>", "<sample>", "</sample>", "<reflect>", "</reflect>",
    "<verdict>", "</verdict>", "<think>", "</think>",
]

#: ChatML with generation markers around the assistant turn (end token included) for assistant-only loss.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\n' }}{% generation %}{{ message['content'] }}{{ '<|im_end|>' }}{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, phrases: Iterable[str] = (),
                    across_spaces: bool = False) -> Tokenizer:
    """Train a byte-level BPE on ``texts`` with digits split and the special/tag tokens added whole (and each of
    ``phrases`` as one token, matched verbatim, longest first).

    ``across_spaces``: merges may span spaces and punctuation (only digits split the text before BPE), so
    ``" + "``, ``", "`` and ``"Step "`` are one token each instead of ``" +"`` plus a lone space before every
    digit: a third fewer tokens on the toy corpus, and a question's list ``[6, 5, 3]`` puts its numbers every
    other token, as the attempt's steps do.
    """
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True),
         pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=not across_spaces)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_tokens([AddedToken(tag, single_word=False, normalized=False, special=False) for tag in TAG_TOKENS])
    extra = sorted(set(phrases) - set(TAG_TOKENS), key=lambda p: (-len(p), p))
    if extra:
        tok.add_tokens([AddedToken(p, single_word=False, normalized=False, special=False) for p in extra])
    return tok


def save_tokenizer(tok: Tokenizer, out_dir: str | Path, model_max_length: int):
    """Save as a transformers fast tokenizer (loadable with ``AutoTokenizer.from_pretrained``)."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[IM_START],
        model_max_length=model_max_length,
        padding_side="left",  # generation pads on the left; trainers set their own side
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out_dir))
    return fast
