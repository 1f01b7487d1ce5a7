"""The tiny model's architecture: a Llama-style causal LM built from a config, sized by measurement.

On a 2-core CPU in fp32, a 0.84M-parameter model (hidden 128, 4 layers) trains at ~10-16k tokens/s and
samples at ~5k tokens/s with 128 sequences in flight; a 4.8M one (256, 6 layers) at ~1.8-3.9k. bf16 on CPU
is 15-25x slower, so the toy model is always fp32.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArchConfig:
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 384  # 3x hidden, as in small Llama configs
    max_position_embeddings: int = 2048  # long enough for 5-attempt traces


def build_model(arch: ArchConfig, vocab_size: int, pad_id: int, bos_id: int, eos_id: int, seed: int = 0):
    """A randomly initialised ``LlamaForCausalLM`` in fp32 (deterministic given ``seed``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_heads,
        max_position_embeddings=arch.max_position_embeddings,
        pad_token_id=pad_id,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        tie_word_embeddings=True,
        rope_theta=10000.0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    return model.float()


def build_random_model_dir(out_dir, texts, arch: ArchConfig | None = None, vocab_size: int = 512, seed: int = 0):
    """Train a tokenizer on ``texts`` and save it with a random model of ``arch`` to ``out_dir``.

    Used by tests (a model built from a config, no download) and as the first step of the toy build.
    """
    from skillfactory.toy.tokenizer import save_tokenizer, train_tokenizer

    arch = arch or ArchConfig()
    tok = train_tokenizer(texts, vocab_size=vocab_size)
    fast = save_tokenizer(tok, out_dir, model_max_length=arch.max_position_embeddings)
    model = build_model(arch, len(fast), fast.pad_token_id, fast.bos_token_id, fast.eos_token_id, seed=seed)
    model.generation_config.pad_token_id = fast.pad_token_id
    model.generation_config.eos_token_id = fast.eos_token_id
    model.save_pretrained(str(out_dir))
    return out_dir
