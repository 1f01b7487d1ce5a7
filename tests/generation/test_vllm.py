"""The vllm backend, as far as it can be tested without vLLM (it needs a GPU machine): the install error and the
request -> (prompt token ids, sampling parameters) plan. The engine call itself is not exercised here."""

from __future__ import annotations

import importlib.util

import pytest

from skillfactory.generation import BackendError, GenerationRequest, SamplingParams, get_backend
from skillfactory.generation.common import completion_seed
from skillfactory.generation.vllm import INSTALL_HINT, plan_requests


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_missing_vllm_is_a_clear_error(tiny_model_dir):
    with pytest.raises(BackendError) as e:
        get_backend("vllm", str(tiny_model_dir))
    assert str(e.value) == INSTALL_HINT


def test_plan_matches_hf_prompt_and_seeds(tiny_model_dir):
    from transformers import AutoTokenizer

    from skillfactory.generation.hf import HFBackend

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    reqs = [GenerationRequest([{"role": "user", "content": "What is 2 times 3?"}]),
            GenerationRequest([{"role": "user", "content": "9 " * 600}]),
            GenerationRequest([{"role": "user", "content": "Check it."}], prefix="<think>\n<sample>")]
    params = SamplingParams(n=3, temperature=0.7, top_p=0.9, max_new_tokens=16, stop=("</answer>",), seed=5)
    rows, skipped = plan_requests(tok, reqs, params, max_context=512)
    assert list(skipped) == [1] and "context of 512" in skipped[1]
    assert [(r.request, r.index) for r in rows] == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2)]
    hf = HFBackend(str(tiny_model_dir))
    for r in rows:
        assert r.prompt_token_ids == hf.prompt_ids(reqs[r.request])  # the same prompt as the hf backend
        s = r.sampling
        assert s["seed"] == completion_seed(5, reqs[r.request], r.index) and s["n"] == 1
        assert (s["temperature"], s["top_p"], s["top_k"], s["max_tokens"]) == (0.7, 0.9, -1, 16)
        assert s["stop"] == ["</answer>"] and s["include_stop_str_in_output"] and not s["skip_special_tokens"]
    assert len({r.sampling["seed"] for r in rows}) == len(rows)
