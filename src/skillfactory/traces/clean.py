"""What of a model's text may enter a trace: a leading thinking block is unwrapped, chat special tokens refused.

Why:
- Qwen3 hybrid and DeepSeek-R1 models open every response with their own ``<think>...</think>`` reasoning
  (templates whose generation prompt already ends in ``<think>\\n`` leave only the closer in the text). A trace
  uses ``<think>`` for its own structure, so such texts were all dropped as ``tag_in_text`` and the build made
  zero traces. The leading block is the attempt's reasoning: its words are kept as plain text and the two tags
  dropped. A structure tag anywhere else still makes the text unusable.
- A chat special token (``<|im_end|>``, ``<|eot_id|>``, ...) inside a ``<sample>`` or ``<reflect>`` block teaches
  SFT to end the turn there, after the first attempt. A backend that kept the end-of-turn string did exactly
  that, so the builder refuses such texts whoever wrote them and counts them as ``special_token``. The
  records do not name their model, so the chat tokens of the common families are always refused, plus the
  tokenizer's own ``all_special_tokens`` when the build is given one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from skillfactory.prompting import THINK_CLOSE, THINK_OPEN
from skillfactory.traces.formats import STRUCTURE_TAGS

#: Chat special tokens of the families we sample from: ChatML (Qwen), Llama 3, Gemma, Phi-3, DeepSeek-R1.
CHAT_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|im_start|>", "<|im_end|>", "<|endoftext|>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
    "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>",
    "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
)
#: Tags a trace or its verifier needs; never refused as special, even when a tokenizer marks them special.
TRACE_TAGS = frozenset(STRUCTURE_TAGS) | {"<answer>", "</answer>", "<verdict>", "</verdict>"}


_STRUCTURE_TAG = re.compile("|".join(map(re.escape, STRUCTURE_TAGS)))


def has_structure_tag(text: str) -> bool:
    """Does a text hold a tag of the trace structure (<think>, <sample>, <reflect> or their closers)?"""
    return _STRUCTURE_TAG.search(text) is not None


def unwrap_thinking(text: str) -> str:
    """The text with a leading ``<think>...</think>`` block (or a leading ``...</think>`` whose opener was in
    the prompt) turned into plain text: reasoning, a blank line, the rest. Other texts are returned unchanged.

        >>> unwrap_thinking("<think>\\n3*5 is 15\\n</think>\\n\\n<answer>15</answer>")
        '3*5 is 15\\n\\n<answer>15</answer>'
        >>> unwrap_thinking("<think>\\n\\n</think>\\n\\n<answer>15</answer>")
        '<answer>15</answer>'
    """
    close = text.find(THINK_CLOSE)
    if close == -1:
        return text
    reasoning = text[:close].lstrip()
    if reasoning.startswith(THINK_OPEN):
        reasoning = reasoning[len(THINK_OPEN):]
    if THINK_OPEN in reasoning:  # the block does not open the text: leave the tags for the builder to refuse
        return text
    return "\n\n".join(p for p in (reasoning.strip(), text[close + len(THINK_CLOSE):].strip()) if p)


class TextScreen:
    """Cleans a sample or reflection text for a trace and says why one cannot go in.

        >>> screen = TextScreen()
        >>> screen.refusal(screen.clean("<answer>15</answer><|im_end|>"))
        'special_token'
    """

    def __init__(self, special_tokens: Iterable[str] = ()):
        tokens = {t for t in (*CHAT_SPECIAL_TOKENS, *special_tokens) if t and t not in TRACE_TAGS}
        self.special_tokens = tuple(sorted(tokens, key=lambda t: (-len(t), t)))  # longest first for the regex
        self._special = re.compile("|".join(map(re.escape, self.special_tokens)))

    @classmethod
    def for_tokenizer(cls, path: str | None) -> TextScreen:
        """The common chat tokens plus the special tokens of the tokenizer in ``path`` (a local model folder)."""
        if path is None:
            return cls()
        from transformers import AutoTokenizer

        from skillfactory.traces.sources import TraceInputError

        try:
            tok = AutoTokenizer.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise TraceInputError(f"tokenizer {path!r}: cannot load it ({e}); give a local model folder") from None
        return cls(tok.all_special_tokens)

    @staticmethod
    def clean(text: str) -> str:
        """The text as it goes into a trace (see :func:`unwrap_thinking`)."""
        return unwrap_thinking(text)

    def refusal(self, text: str) -> str | None:
        """Why a cleaned text cannot go into a trace: ``tag_in_text``, ``special_token``, or None."""
        if has_structure_tag(text):
            return "tag_in_text"
        if self._special.search(text) is not None:
            return "special_token"
        return None


#: The screen of a build without a tokenizer.
CHAT_SCREEN = TextScreen()
