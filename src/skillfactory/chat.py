"""One way to put a chat through any model family's own chat template, for generation and for training alike.

Why this module exists: every family renders the assistant turn differently (ChatML for Qwen, header tokens for
Llama 3, ``<start_of_turn>model`` for Gemma, ``<｜Assistant｜><think>`` for DeepSeek-R1 distills), and the hybrid
Qwen3 templates change the generation prompt with a switch (``enable_thinking``). A model trained on one rendering
and sampled with another is trained on a context it never sees. So the rule here is the inference rule:

- the **prompt** of a training example is exactly the generation prompt the sampler renders
  (``apply_chat_template(..., add_generation_prompt=True, **chat_template_kwargs)``);
- the **completion** is the assistant text followed by the template's own **end-of-turn** token, found by rendering
  a placeholder answer and reading what the template writes after it, up to and including its first special
  token (``<|im_end|>``, ``<|eot_id|>``, ``<end_of_turn>``, ``<|end|>``, ``<｜end▁of▁sentence｜>``). What a template
  writes after that token (a newline, an EOS) comes after the model stopped and is not trained.

This needs no ``{% generation %}`` markers, so it works for every family, including Llama 3.1/3.2 for which TRL
ships no training template, and it leaves the model's template untouched (the saved model keeps its own).

Chat-template arguments (``enable_thinking`` ...) are one dict, set once in a recipe (``chat_template_kwargs``)
and passed to sampling, reflection, SFT, GRPO and eval.

    >>> prompt, completion = training_texts(tok, [{"role": "user", "content": "2+2?"},
    ...                                           {"role": "assistant", "content": "<answer>4</answer>"}])
    >>> completion                                             # doctest: +SKIP
    '<answer>4</answer><|im_end|>'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skillfactory.errors import SkillFactoryError
from skillfactory.prompting import THINK_OPEN

_PLACEHOLDER = "SKILLFACTORY_PLACEHOLDER_ANSWER"


class ChatTemplateError(SkillFactoryError, ValueError):
    """A chat template that cannot render a trainable assistant turn; the message names the family and the fix."""


def family_of(tok: Any) -> str:
    """A human name for the tokenizer's family, for error messages (its model folder's name or class)."""
    path = str(getattr(tok, "name_or_path", "") or "").rstrip("/")
    return path.rsplit("/", 1)[-1] if path else type(tok).__name__


def template_kwargs(chat_template_kwargs: dict[str, Any] | None, chat_template: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``apply_chat_template``: the recipe's template arguments and an optional template."""
    kw = dict(chat_template_kwargs or {})
    if chat_template:
        kw["chat_template"] = chat_template
    return kw


def generation_prompt(tok: Any, messages: list[dict[str, str]], chat_template_kwargs: dict[str, Any] | None = None,
                      chat_template: str | None = None) -> str:
    """The text a model continues from: its chat template with the generation prompt and the template arguments."""
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False,
                                   **template_kwargs(chat_template_kwargs, chat_template))


def special_token_ids(tok: Any) -> set[int]:
    """Ids of every special token: named ones and added tokens marked special (Llama 3's ``<|eot_id|>`` ...)."""
    ids = set(getattr(tok, "all_special_ids", []) or [])
    for i, added in (getattr(tok, "added_tokens_decoder", None) or {}).items():
        if getattr(added, "special", False):
            ids.add(int(i))
    return ids


@dataclass(frozen=True)
class EndOfTurn:
    """What the template writes after an assistant turn's text, up to the token that ends the turn."""

    text: str  # e.g. "<|im_end|>"; may start with template text before the token
    token_id: int  # the special token that ends the turn (generation stops there)


def end_of_turn(tok: Any, chat_template_kwargs: dict[str, Any] | None = None,
                chat_template: str | None = None) -> EndOfTurn:
    """The template's end-of-turn, read from a rendered placeholder answer (see the module docstring)."""
    messages = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": _PLACEHOLDER}]
    try:
        full = tok.apply_chat_template(messages, tokenize=False, **template_kwargs(chat_template_kwargs, chat_template))
    except Exception as e:  # a template error is the user's to fix, in one line  # noqa: BLE001
        raise ChatTemplateError(f"{family_of(tok)}: its chat template cannot render a user/assistant chat "
                                f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    at = full.find(_PLACEHOLDER)
    if at < 0:
        raise ChatTemplateError(f"{family_of(tok)}: its chat template does not write the assistant's text verbatim, "
                                "so no training example can be built; use the model's original template")
    after = full[at + len(_PLACEHOLDER):]
    ids = tok(after, add_special_tokens=False)["input_ids"]
    specials = special_token_ids(tok)
    for i in ids:
        if i in specials:
            token = tok.convert_ids_to_tokens(int(i))
            cut = after.find(token)
            return EndOfTurn(after[: cut + len(token)] if cut >= 0 else token, int(i))
    raise ChatTemplateError(
        f"{family_of(tok)}: its chat template writes no special end-of-turn token after the assistant turn "
        f"(it writes {after!r}), so the model could not learn to stop; use the family's original template "
        "(e.g. the one TRL ships under trl/chat_templates/) or end the assistant turn with the EOS token"
    )


def training_texts(tok: Any, messages: list[dict[str, str]], chat_template_kwargs: dict[str, Any] | None = None,
                   eot: EndOfTurn | None = None) -> tuple[str, str]:
    """(prompt, completion) of a chat whose last turn is the assistant's: what SFT trains on.

    Earlier turns (any roles the template accepts) are context; the loss is on the last assistant turn. When the
    generation prompt already opens the thinking block (``...<｜Assistant｜><think>\\n``) and the text starts with
    one, the text's own opening is dropped so the model is not taught to write ``<think>`` twice.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("the last message must be the assistant's turn")
    eot = eot or end_of_turn(tok, chat_template_kwargs)
    prompt = generation_prompt(tok, messages[:-1], chat_template_kwargs)
    text = messages[-1]["content"]
    if prompt.rstrip().endswith(THINK_OPEN) and text.lstrip().startswith(THINK_OPEN):
        text = text.lstrip()[len(THINK_OPEN):].lstrip("\n")
    return prompt, text + eot.text


def tokenize_example(tok: Any, messages: list[dict[str, str]], chat_template_kwargs: dict[str, Any] | None = None,
                     eot: EndOfTurn | None = None) -> dict[str, list[int]]:
    """``input_ids`` and ``completion_mask`` (1 on the trained tokens) of one chat, tokenized as at inference.

    Prompt and completion are tokenized apart, without added special tokens (the template holds BOS): the prompt's
    ids are then exactly those the sampler feeds the model, and training starts where generation starts.
    """
    prompt, completion = training_texts(tok, messages, chat_template_kwargs, eot)
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    return {"input_ids": p + c, "completion_mask": [0] * len(p) + [1] * len(c)}


def trained_span(example: dict[str, list[int]]) -> list[int]:
    """The token ids the loss is on (``completion_mask`` 1)."""
    return [i for i, m in zip(example["input_ids"], example["completion_mask"]) if m]


def ends_with_end_of_turn(example: dict[str, list[int]], eot: EndOfTurn) -> bool:
    """Whether the trained span ends with the end-of-turn token (else the template tokenizes its end of turn
    differently from how it renders it, and no row of it could teach the model to stop)."""
    trained = trained_span(example)
    return bool(trained) and trained[-1] == eot.token_id


def mask_problem(example: dict[str, list[int]], eot: EndOfTurn, specials: set[int]) -> str | None:
    """Why a tokenized example would teach the wrong stop, or None: the trained span must end with the end-of-turn
    token and hold it (and any other special token) exactly once, at its end."""
    if not ends_with_end_of_turn(example, eot):
        return "the trained span does not end with the end-of-turn token"
    inner = [i for i in trained_span(example)[:-1] if i in specials]
    if inner:
        return f"the assistant text holds {len(inner)} special token(s) (e.g. id {inner[0]}) before its end"
    return None
