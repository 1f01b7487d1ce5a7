"""The vllm backend, as far as it can be tested without vLLM (it needs a GPU machine): the install error, the
request -> (prompt token ids, sampling parameters) plan, the data-parallel refusal, and the engine call against a
stand-in module whose outputs are shaped like vLLM's (completion text from token ids, one call for all rows)."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import dataclass

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


# ---- the engine call, on a stand-in for the vllm module -------------------------------------------------------
# vLLM cannot run here, so ``vllm`` is replaced by a module whose ``LLM.generate`` returns objects shaped like
# vLLM's RequestOutput / CompletionOutput. Their ``text`` is what vLLM's detokenizer gives with our flags
# (include_stop_str_in_output=True, skip_special_tokens=False): the EOS string is left on an EOS ending.
@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str  # "stop" | "length"
    stop_reason: int | str | None  # None = EOS, int = a stop token id, str = the matched stop string


@dataclass
class RequestOutput:
    outputs: list[CompletionOutput]


class FakeLLM:
    """Answers every prompt with the next of ``script`` (token ids, finish reason, stop reason), cycling."""

    script: list[tuple[list[int], str, int | str | None]] = []
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs):
        from transformers import AutoTokenizer

        self.kwargs, self.calls = kwargs, []
        self.tok = AutoTokenizer.from_pretrained(kwargs["model"])
        FakeLLM.instances.append(self)

    def generate(self, prompts, sampling_params, use_tqdm=True):
        self.calls.append(len(prompts))
        out = []
        for k, sp in enumerate(sampling_params):
            ids, finish, stop = self.script[k % len(self.script)]
            text = self.tok.decode(ids, skip_special_tokens=sp["skip_special_tokens"])
            out.append(RequestOutput([CompletionOutput(0, text, list(ids), finish, stop)]))
        return out


@pytest.fixture
def fake_vllm(monkeypatch, tiny_model_dir):
    from transformers import AutoTokenizer

    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances.clear()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    return tok, lambda text: tok(text, add_special_tokens=False)["input_ids"]


BODY = "3 * 5 + 7 = 22 <answer>22</answer>"


def test_eos_ending_drops_the_end_of_turn_token_like_hf(fake_vllm, tiny_model_dir):
    from skillfactory.generation.hf import HFBackend

    tok, ids = fake_vllm
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    FakeLLM.script = [(ids(BODY) + [eos], "stop", None), (ids(BODY) + [eos], "stop", eos)]  # EOS; stop token id
    assert FakeLLM.script[0][0] and tok.decode(FakeLLM.script[0][0]).endswith("<|im_end|>")  # vLLM's text would
    backend = get_backend("vllm", str(tiny_model_dir))
    params = SamplingParams(n=2, max_new_tokens=40)
    out = backend.generate([GenerationRequest([{"role": "user", "content": "3 5 7 -> 22"}])], params)[0]
    assert [(c.text, c.n_tokens, c.finish_reason) for c in out] == [(BODY, len(ids(BODY)) + 1, "stop")] * 2
    hf = HFBackend(str(tiny_model_dir))  # the same tokens give the same completion on the hf backend
    assert hf._finish(ids(BODY) + [eos], params) == out[0]


def test_stop_string_ending_keeps_the_stop_string(fake_vllm, tiny_model_dir):
    _, ids = fake_vllm
    backend = get_backend("vllm", str(tiny_model_dir))
    reqs = [GenerationRequest([{"role": "user", "content": "go"}])]
    FakeLLM.script = [(ids(BODY), "stop", "</answer>")]
    out = backend.generate(reqs, SamplingParams(max_new_tokens=40, stop=("</answer>",)))[0][0]
    assert (out.text, out.n_tokens, out.finish_reason) == (BODY, len(ids(BODY)), "stop")
    FakeLLM.script = [(ids(BODY + " step"), "stop", " st")]  # the stop string ends inside the last token
    out = backend.generate(reqs, SamplingParams(max_new_tokens=40, stop=(" st",)))[0][0]
    assert (out.text, out.n_tokens, out.finish_reason) == (BODY + " st", len(ids(BODY + " step")), "stop")


def test_length_ending_is_the_text_as_generated(fake_vllm, tiny_model_dir):
    _, ids = fake_vllm
    FakeLLM.script = [(ids("3 * 5 + 7 = 2"), "length", None)]
    backend = get_backend("vllm", str(tiny_model_dir))
    out = backend.generate([GenerationRequest([{"role": "user", "content": "go"}])], SamplingParams(max_new_tokens=13))
    assert (out[0][0].text, out[0][0].n_tokens, out[0][0].finish_reason) == ("3 * 5 + 7 = 2", 13, "length")


def test_one_engine_call_for_all_rows_and_large_runner_chunks(fake_vllm, tiny_model_dir):
    from skillfactory.generation.runner import Unit, run_units

    tok, ids = fake_vllm
    FakeLLM.script = [(ids(BODY) + [tok.eos_token_id], "stop", None)]
    backend = get_backend("vllm", str(tiny_model_dir))
    reqs = [GenerationRequest([{"role": "user", "content": f"q{i}"}]) for i in range(7)]
    seen = []
    params = SamplingParams(n=3, max_new_tokens=40)
    out = backend.generate(reqs, params, progress=lambda c, t: seen.append((c, t)))
    assert FakeLLM.instances[-1].calls == [21] and seen == [(21, 21 * (len(ids(BODY)) + 1))]
    # the resumable runner hands the vLLM backend chunks of preferred_batch completions, not the caller's 4
    units = [Unit(i, r) for i, r in enumerate(reqs)]
    got = list(run_units(backend, units, params, set(), chunk_completions=4, quiet=True))
    assert len(got) == 21 and FakeLLM.instances[-1].calls == [21, 21] and out[0][0].text == BODY


def test_data_parallel_is_refused_with_a_hint(tiny_model_dir):
    for options in ({"data_parallel_size": 2}, {"engine_args": {"data_parallel_size": 4}}):
        with pytest.raises(BackendError) as e:
            get_backend("vllm", str(tiny_model_dir), **options)
        msg = str(e.value)
        assert "\n" not in msg and "one engine per process" in msg and "tensor_parallel_size" in msg
