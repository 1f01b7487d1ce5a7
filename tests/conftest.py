"""Shared fixtures. Models are built from a config inside the tests: nothing is downloaded."""

from __future__ import annotations

import pytest

from skillfactory.prompting import VARIANT_INSTRUCTIONS, REFLECTION_TEMPLATE


def _corpus() -> list[str]:
    base = list(VARIANT_INSTRUCTIONS.values()) + [REFLECTION_TEMPLATE]
    base += ["Using the numbers 3, 5, 7, create an expression that equals 22.", "3 * 5 + 7 = 22",
             "<answer>3*5+7</answer>", "<verdict>Correct</verdict>", "<verdict>Incorrect</verdict>",
             "What is 12 times 34? Let me multiply step by step."]
    return base * 4 + [str(i) for i in range(100)]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A random 2-layer Llama (hidden 32) with a BPE tokenizer and ChatML template, saved in HF format."""
    from skillfactory.toy.model import ArchConfig, build_random_model_dir

    out = tmp_path_factory.mktemp("tiny_model")
    arch = ArchConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_position_embeddings=512)
    return build_random_model_dir(out, _corpus(), arch=arch, vocab_size=300, seed=0)


@pytest.fixture(scope="session")
def micro_model(tmp_path_factory):
    """The micro toy model, built once per test session from scratch in a cache of its own (never the user's):
    the toy build's tests check this very build, and the tests that only need a small trained model share it.
    Tests must not write into it."""
    from skillfactory.toy.build import build_toy_model

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SKILLFACTORY_CACHE", str(tmp_path_factory.mktemp("micro_cache")))
        return build_toy_model("micro", seed=0, quiet=True)
