"""Build a tiny random model of a real instruct family, and fit a scripted behaviour into it.

``build_family_model("qwen3", out)`` writes a folder that ``AutoTokenizer`` / ``AutoModelForCausalLM`` load like
the real checkpoint: the real architecture class (1-2 layers, hidden 64), the family's original chat template
(byte-identical to TRL's copy), its special tokens with their real flags, bos/eos/pad and BOS-adding behaviour
(see ``family_specs``), and a ~640-piece BPE trained on a built-in text. The BPE uses the family's own
pre-tokenisation (Qwen's or Llama 3's regex, or Gemma/Llama-2 SentencePiece style) because transformers 5
*rebuilds* the pipeline of ``Qwen2Tokenizer``/``GemmaTokenizer`` folders from vocab and merges: a vocabulary
trained another way would load changed.

``fit_responses(folder, pairs)`` then trains it (plain torch, teacher forcing, loss on the completion only)
until greedy decoding of every prompt reproduces its completion token for token, so a pipeline smoke test
can get right answers, true verdicts or a Qwen3-style ``<think>`` block from a random model.

Timings on a shared 2-core CPU: a build takes 0.02-0.1 s (plus ~1 s of imports once); fitting 2 pairs of
~30-70 tokens takes 0.2-0.6 s (40-60 steps), 12 pairs of ~170 tokens 4-9 s (80-160 steps).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

try:  # imported as the package ``families`` (tests/ is on sys.path via tests/conftest.py) or beside it
    from .family_specs import FAMILIES, FamilySpec, get_family
except ImportError:  # pragma: no cover - loaded as a plain module
    from family_specs import FAMILIES, FamilySpec, get_family  # type: ignore[no-redef]

__all__ = ["FAMILIES", "FamilySpec", "build_family_model", "fit_responses", "chat_pair", "template_text",
           "FamilyModelCache", "CORPUS", "SAMPLE_TEXT"]

#: A string every family's tokenizer must round-trip exactly.
SAMPLE_TEXT = "Step 1: 57 - 22 = 35\n<answer>\n57 - 22\n</answer>"

QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

#: The text the BPE is trained on: the pipeline's words and tags, digits, punctuation, template boilerplate.
CORPUS = [
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789",
    "! \" # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \\ ] ^ _ ` { | } ~ \n \t",
    "Step 1: 57 - 22 = 35\nStep 2: 35 + 7 = 42\nStep 3: 42 * 2 = 84\n",
    "<answer>\n57 - 22\n</answer>\n<answer>(3 + 5) * 7</answer>",
    "<sample>\nLet me think step by step.\n</sample>\n<reflect>\nLet us verify this answer.\n</reflect>",
    "<verdict>\nCorrect\n</verdict>\n<verdict>\nIncorrect\n</verdict>",
    "<think>\nOkay, so I need to find the answer.\n</think>\n\nThe answer is 408.",
    "Using the numbers [3, 5, 7], create an equation that equals 22. You can use basic arithmetic operations.",
    "What is 12 times 34? Let me multiply: 12 * 34 = 408. So the final answer is 408.",
    "Give your final answer inside <answer> </answer> tags. Each number can only be used once.",
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n",
    "system user assistant model Question Answer Reflection verdict answer sample reflect think Step",
    "The quick brown fox jumps over the lazy dog. Hello, world! It's a test; isn't it?",
]


def template_text(spec: FamilySpec) -> str:
    """The family's original chat template, read from TRL's copy (``trl/chat_templates/<template>.jinja``)."""
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / f"{spec.template}.jinja").read_text(encoding="utf-8")


def _train_vocab(spec: FamilySpec, vocab_size: int):
    """A ``tokenizers.Tokenizer`` with the family's pipeline, trained on ``CORPUS``, before added tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    lead = [t.content for t in spec.leading_tokens]
    if spec.vocab_style in ("qwen", "llama3"):
        tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
        if spec.vocab_style == "qwen":
            tok.normalizer = normalizers.NFC()
        regex = QWEN_REGEX if spec.vocab_style == "qwen" else LLAMA3_REGEX
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=lead, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(CORPUS * 4, trainer=trainer)
        return tok
    # SentencePiece style: "▁" for spaces, byte fallback for characters outside the vocabulary.
    tok = Tokenizer(models.BPE(unk_token=spec.unk_token, fuse_unk=True, byte_fallback=True))
    decoder = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    if spec.vocab_style == "gemma":  # what transformers 5's GemmaTokenizer rebuilds
        tok.normalizer = normalizers.Replace(" ", "▁")
        tok.pre_tokenizer = pre_tokenizers.Split(" ", behavior="merged_with_previous", invert=False)
    elif spec.vocab_style == "llama2":  # Llama-2-converted tokenizer.json (Phi-3), loaded as is
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
        decoder.append(decoders.Strip(" ", 1, 0))
    else:
        raise ValueError(f"{spec.name}: unknown vocab_style {spec.vocab_style!r}; use qwen, llama3, gemma or llama2")
    tok.decoder = decoders.Sequence(decoder)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 256, special_tokens=lead, show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    # byte-fallback pieces <0x00>..<0xFF> right after the leading tokens, as in Llama-2/Gemma vocabularies
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    order = sorted(vocab, key=vocab.get)
    pieces = order[:len(lead)] + [f"<0x{b:02X}>" for b in range(256)] + order[len(lead):]
    data["model"]["vocab"] = {p: i for i, p in enumerate(pieces)}
    return Tokenizer.from_str(json.dumps(data))


def _build_tokenizer(spec: FamilySpec, vocab_size: int):
    from tokenizers import AddedToken
    from transformers import PreTrainedTokenizerFast

    tok = _train_vocab(spec, vocab_size)
    flags = {t.content: t for t in spec.leading_tokens}
    data = json.loads(tok.to_str())
    for entry in data["added_tokens"]:  # the leading tokens: trained as special, give them their real flags
        t = flags[entry["content"]]
        entry.update(special=t.special, rstrip=t.rstrip, normalized=False)
    tok = type(tok).from_str(json.dumps(data))
    tok.add_tokens([AddedToken(t.content, special=t.special, rstrip=t.rstrip, normalized=False)
                    for t in spec.added_tokens])
    kwargs = dict(bos_token=spec.bos_token, eos_token=spec.eos_token, pad_token=spec.pad_token,
                  unk_token=spec.unk_token, extra_special_tokens=list(spec.extra_special_tokens))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, **{k: v for k, v in kwargs.items() if v},
        add_bos_token=spec.add_bos_token, add_eos_token=False, model_max_length=2048,
        padding_side=spec.padding_side, clean_up_tokenization_spaces=spec.clean_up_tokenization_spaces,
    )
    fast.chat_template = template_text(spec)
    return fast


def _patch_tokenizer_config(out: Path, spec: FamilySpec) -> None:
    path = out / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    cfg["tokenizer_class"] = spec.tokenizer_class
    cfg["add_bos_token"] = spec.add_bos_token
    cfg.update(spec.extra_config)
    path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _ids(tok, names) -> list[int]:
    ids = [tok.convert_tokens_to_ids(n) for n in names]
    if any(i is None or i == tok.unk_token_id for i in ids):
        raise ValueError(f"tokens {list(names)} are not all in the vocabulary: {ids}")
    return ids


def _one_or_list(ids: list[int]) -> int | list[int]:
    return ids[0] if len(ids) == 1 else ids


def build_family_model(family: str | FamilySpec, out_dir: str | Path, seed: int = 0, *, hidden_size: int = 64,
                       num_layers: int = 2, num_heads: int = 4, intermediate_size: int = 128,
                       vocab_size: int = 640) -> Path:
    """Write a tiny random ``family`` model (tokenizer, template, weights, generation config) to ``out_dir``.

    ``family`` is a name in ``FAMILIES`` or a spec (e.g. ``dataclasses.replace(FAMILIES["llama3_1"],
    pad_token="<|finetune_right_pad_id|>")``). Weights come from ``seed`` (the global RNG is left alone);
    fp32 safetensors, ``max_position_embeddings`` 2048. Returns ``out_dir``.

    >>> folder = build_family_model("qwen3", tmp_path / "qwen3")          # doctest: +SKIP
    >>> AutoModelForCausalLM.from_pretrained(folder).__class__.__name__   # doctest: +SKIP
    'Qwen3ForCausalLM'
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    spec = family if isinstance(family, FamilySpec) else get_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = _build_tokenizer(spec, vocab_size)
    tok.save_pretrained(str(out))
    _patch_tokenizer_config(out, spec)

    pad_id = tok.convert_tokens_to_ids(spec.pad_token) if spec.pad_token else None
    config = AutoConfig.for_model(
        spec.model_type, vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=intermediate_size,
        num_hidden_layers=num_layers, num_attention_heads=num_heads, max_position_embeddings=2048,
        tie_word_embeddings=spec.tie_word_embeddings, pad_token_id=pad_id,
        bos_token_id=_ids(tok, [spec.config_bos])[0] if spec.config_bos else None,
        eos_token_id=_one_or_list(_ids(tok, spec.config_eos)),
        **{"num_key_value_heads": num_heads, **spec.arch},
    )
    config.architectures = [spec.architecture]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if type(model).__name__ != spec.architecture:
        raise TypeError(f"{spec.name}: model_type {spec.model_type!r} built {type(model).__name__}, "
                        f"expected {spec.architecture}")
    bos = spec.generation_bos or spec.config_bos
    model.generation_config = GenerationConfig(
        bos_token_id=_ids(tok, [bos])[0] if bos else None, eos_token_id=_one_or_list(_ids(tok, spec.generation_eos)),
        pad_token_id=pad_id, **spec.generation,
    )
    model.save_pretrained(str(out))
    return out


def chat_pair(tokenizer, family: str | FamilySpec, user: str, reply: str, *, system: str | None = None,
              **template_kwargs) -> tuple[str, str]:
    """``(prompt, completion)`` for ``fit_responses``: the chat rendered up to the generation prompt, and
    ``reply`` followed by the family's end of turn (what the real model emits when it stops).

    ``template_kwargs`` go to ``apply_chat_template`` (``enable_thinking=False`` for Qwen3; pass
    ``date_string="26 Jul 2024"`` to Llama 3.2, whose template otherwise writes today's date).
    """
    spec = family if isinstance(family, FamilySpec) else get_family(family)
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **template_kwargs)
    return prompt, reply + spec.end_of_turn


def _encode_pairs(tok, pairs, eos_ids: set[int]) -> list[tuple[list[int], list[int]]]:
    seqs = []
    for prompt, completion in pairs:
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        c = tok(completion, add_special_tokens=False)["input_ids"]
        if not c or c[-1] not in eos_ids:
            raise ValueError(f"completion {completion[-40:]!r} must end with an end-of-turn token "
                             f"(one of ids {sorted(eos_ids)} of generation_config.eos_token_id), or greedy "
                             "decoding would never stop there; build it with chat_pair()")
        if tok.decode(c) != completion:
            raise ValueError(f"completion {completion!r} decodes back as {tok.decode(c)!r}: the model could emit "
                             "its tokens but never this text; change the text")
        seqs.append((p, c))
    return seqs


def _batch(seqs, pad_id: int, left: bool):
    """Padded ids, attention mask, and for training the target mask over completion positions."""
    import torch

    width = max(len(p) + len(c) for p, c in seqs) if not left else max(len(p) for p, _ in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    target = torch.zeros_like(ids, dtype=torch.bool)
    for i, (p, c) in enumerate(seqs):
        row = p if left else p + c
        start = width - len(row) if left else 0
        ids[i, start:start + len(row)] = torch.tensor(row)
        mask[i, start:start + len(row)] = 1
        if not left:
            target[i, len(p):len(p) + len(c)] = True
    return ids, mask, target


def _margins_ok(model, ids, mask, target, margin: float) -> bool:
    """Teacher-forced check: at every completion position the right token leads the others by ``margin``."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    want = ids[:, 1:][target[:, 1:]]
    scores = logits[target[:, 1:]]
    right = scores.gather(1, want[:, None]).squeeze(1)
    scores.scatter_(1, want[:, None], float("-inf"))
    return bool((right - scores.max(dim=1).values > margin).all())


def _greedy_ok(model, seqs, pad_id: int, eos_ids: list[int]) -> bool:
    """Real check: ``generate`` (greedy, KV cache, left-padded batch) reproduces every completion."""
    import torch
    from transformers import GenerationConfig

    ids, mask, _ = _batch(seqs, pad_id, left=True)
    gen = GenerationConfig(do_sample=False, max_new_tokens=max(len(c) for _, c in seqs) + 2,
                           eos_token_id=eos_ids, pad_token_id=pad_id)
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=mask, generation_config=gen)
    for row, (_, c) in zip(out[:, ids.shape[1]:].tolist(), seqs):
        if row[:len(c)] != c:
            return False
    return True


def fit_responses(model_dir: str | Path, pairs: list[tuple[str, str]], *, max_steps: int = 800,
                  lr: float = 3e-3, seed: int = 0, margin: float = 2.0, check_every: int = 10,
                  threads: int | None = 1) -> int:
    """Train the model in ``model_dir`` until greedy decoding of each prompt yields its completion; save it back.

    Each pair is (prompt text exactly as the chat template renders it with ``add_generation_prompt=True``,
    completion text ending with the family's end of turn); ``chat_pair`` makes them. Prompts are tokenized with
    ``add_special_tokens=False`` (the template already wrote any BOS), completions likewise, separately, as a
    generation engine sees them. Full-batch Adam on the completion tokens only, deterministic for a ``seed``;
    it stops once every completion token leads by ``margin`` logits (so batching and KV-cache noise cannot
    flip a choice) and a greedy ``generate`` confirms all completions. Returns the steps taken; raises
    RuntimeError if ``max_steps`` is not enough (more steps or fewer/shorter pairs help; ``lr`` above 5e-3
    mostly slows it down).

    ``threads``: torch threads while fitting (restored after). One thread makes the result independent of the
    machine and is faster than two on a busy 2-core box (OpenMP threads stall when the cores are shared).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not pairs:
        raise ValueError("pairs is empty: give at least one (prompt, completion)")
    model_dir = Path(model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    eos = model.generation_config.eos_token_id
    eos_ids = [eos] if isinstance(eos, int) else list(eos)
    seqs = _encode_pairs(tok, pairs, set(eos_ids))
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else eos_ids[0]
    ids, mask, target = _batch(seqs, pad_id, left=False)

    prev_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        steps, loss = _fit(model, ids, mask, target, seqs, pad_id, eos_ids, max_steps, lr, seed, margin, check_every)
    finally:
        torch.set_num_threads(prev_threads)
    if steps is None:
        raise RuntimeError(f"{model_dir.name}: greedy decoding did not reproduce all {len(pairs)} completions "
                           f"after {max_steps} steps (last loss {loss:.3f}); raise max_steps or fit fewer pairs")
    model.save_pretrained(str(model_dir))
    return steps


def _fit(model, ids, mask, target, seqs, pad_id, eos_ids, max_steps, lr, seed, margin, check_every):
    """The training loop: (steps taken, or None if not memorised within ``max_steps``; last loss)."""
    import torch

    labels, where = ids[:, 1:], target[:, 1:]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for step in range(1, max_steps + 1):
            model.train()
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
            loss = torch.nn.functional.cross_entropy(logits[where], labels[where])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % check_every:
                continue
            model.eval()
            if _margins_ok(model, ids, mask, target, margin) and _greedy_ok(model, seqs, pad_id, eos_ids):
                return step, float(loss.item())
    return None, float(loss.item())


class FamilyModelCache:
    """Builds each family once under ``root`` and each fitted variant once (keyed by its pairs and settings).

    Callers must not write into the folders they get back; copy one first (``shutil.copytree``) to train it.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._done: dict[str, Path] = {}

    def base(self, family: str) -> Path:
        """The random model of ``family`` (seed 0)."""
        key = f"{family}/base"
        if key not in self._done:
            self._done[key] = build_family_model(family, self.root / family / "base")
        return self._done[key]

    def fitted(self, family: str, pairs: list[tuple[str, str]], **fit_kwargs) -> Path:
        """A copy of ``base(family)`` fitted to ``pairs`` with ``fit_responses(**fit_kwargs)``."""
        import hashlib

        digest = hashlib.sha1(json.dumps([pairs, fit_kwargs], sort_keys=True).encode()).hexdigest()[:12]
        key = f"{family}/fit-{digest}"
        if key not in self._done:
            out = self.root / key
            shutil.rmtree(out, ignore_errors=True)  # left over from a fit that raised
            shutil.copytree(self.base(family), out)
            fit_responses(out, pairs, **fit_kwargs)
            self._done[key] = out
        return self._done[key]
