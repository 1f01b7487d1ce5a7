"""The hf backend on the tiny fixture model: order, n, seeds per work unit, greedy, stop strings, skips, errors."""

from __future__ import annotations

import math

import pytest

from skillfactory.generation import BackendError, GenerationRequest, SamplingParams, get_backend
from skillfactory.generation.hf import _SeededSampler, row_uniform


def req(text: str, prefix: str = "") -> GenerationRequest:
    return GenerationRequest([{"role": "user", "content": text}], prefix)


REQS = [req(f"What is {i} times {i + 3}?") for i in range(5)] + [req("Using the numbers 3, 5, 7, make 22. " * 3)]


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return get_backend("hf", str(tiny_model_dir), batch_size=4)


def test_seeded_sampler_draws_from_the_softmax():
    import torch

    logits = torch.tensor([2.0, 1.0, float("-inf"), 0.0, -1.0])
    probs = torch.softmax(logits, -1)
    seeds = torch.arange(20000, dtype=torch.int64) * 7919
    out = _SeededSampler(seeds, prompt_len=3)(torch.zeros(len(seeds), 3, dtype=torch.long), logits.repeat(len(seeds), 1))
    assert torch.isfinite(out).sum(-1).eq(1).all()  # exactly one token allowed per row
    freq = torch.bincount(out.argmax(-1), minlength=5).double() / len(seeds)
    assert torch.allclose(freq, probs.double(), atol=0.015) and freq[2] == 0  # never a filtered token
    # the uniforms are a pure function of (seed, step): equal when equal, different across steps and rows
    assert torch.equal(row_uniform(seeds[:3], 5), row_uniform(seeds[:3], 5))
    assert not torch.equal(row_uniform(seeds[:3], 5), row_uniform(seeds[:3], 6))
    assert len(set(row_uniform(seeds[:100], 0).tolist())) == 100


def test_n_completions_in_request_order_with_progress(backend):
    seen = {"completions": 0, "tokens": 0}

    def progress(c, t):
        seen["completions"] += c
        seen["tokens"] += t

    out = backend.generate(REQS, SamplingParams(n=3, max_new_tokens=6, seed=0), progress=progress)
    assert [len(x) for x in out] == [3] * len(REQS)
    flat = [c for x in out for c in x]
    assert all(c.finish_reason in ("stop", "length") and 0 < c.n_tokens <= 6 for c in flat)
    assert all(c.n_tokens == 6 for c in flat if c.finish_reason == "length")
    assert seen == {"completions": 3 * len(REQS), "tokens": sum(c.n_tokens for c in flat)}
    # each request's completions are those it gets alone (order restored after length bucketing)
    for i in (0, len(REQS) - 1):
        assert backend.generate([REQS[i]], SamplingParams(n=3, max_new_tokens=6, seed=0))[0] == out[i]


def test_seeded_per_work_unit(backend, tiny_model_dir):
    p = SamplingParams(n=4, max_new_tokens=8, seed=3)
    a = backend.generate(REQS, p)
    b = get_backend("hf", str(tiny_model_dir), batch_size=64).generate(list(reversed(REQS)), p)
    assert a == list(reversed(b))  # other batch size, other neighbours, other order: same text
    c = backend.generate(REQS, SamplingParams(n=4, max_new_tokens=8, seed=4))
    assert [x.text for r in a for x in r] != [x.text for r in c for x in r]
    assert len({x.text for x in a[0]}) > 1  # the n completions of one request differ


def test_greedy_and_sampling_knobs(backend):
    g = backend.generate(REQS[:2], SamplingParams(n=3, temperature=0, max_new_tokens=8))
    assert all(len({c.text for c in r}) == 1 for r in g)
    again = backend.generate(REQS[:2], SamplingParams(n=1, temperature=0, max_new_tokens=8, seed=9))
    assert [r[0] for r in g] == [r[0] for r in again]  # greedy ignores the seed
    # a tiny top_p keeps only the most likely token: sampling becomes greedy
    nucleus = backend.generate(REQS[:2], SamplingParams(n=2, top_p=1e-6, max_new_tokens=8))
    assert [[c.text for c in r] for r in nucleus] == [[r[0].text] * 2 for r in g]


def test_stop_string_cuts_after_it(backend):
    full = backend.generate(REQS[:1], SamplingParams(n=1, temperature=0, max_new_tokens=12))[0][0]
    assert len(full.text) >= 4
    stop = full.text[2:4]
    cut = backend.generate(REQS[:1], SamplingParams(n=1, temperature=0, max_new_tokens=12, stop=(stop,)))[0][0]
    assert cut.finish_reason == "stop" and cut.text.endswith(stop) and full.text.startswith(cut.text)
    assert cut.text.find(stop) == len(cut.text) - len(stop) and cut.n_tokens <= full.n_tokens


def test_prefix_is_appended_to_the_chat_prompt(backend):
    tok = backend.tokenizer
    plain = tok.decode(backend.prompt_ids(req("hi")))
    assert plain.endswith("<|im_start|>assistant\n") and "hi" in plain
    cont = tok.decode(backend.prompt_ids(req("hi", prefix="<think>\n<sample>")))
    assert cont == plain + "<think>\n<sample>"


def test_over_long_prompt_is_skipped_not_raised(backend):
    out = backend.generate([REQS[0], req("7 " * 600), REQS[1]], SamplingParams(n=2, max_new_tokens=4))
    assert all(c.finish_reason == "skipped" and c.n_tokens == 0 and "context of 512" in c.skip_reason for c in out[1])
    assert all(c.finish_reason != "skipped" for c in out[0] + out[2])


def test_bad_model_paths_are_one_line_errors(tmp_path, tiny_model_dir):
    with pytest.raises(BackendError, match="does not exist"):
        get_backend("hf", str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match="tokenizer"):
        get_backend("hf", str(tmp_path / "empty"))
    from transformers import AutoTokenizer, ViTConfig

    not_lm = tmp_path / "vit"
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(not_lm)
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32).save_pretrained(not_lm)
    with pytest.raises(BackendError, match="not a causal language model") as e:
        get_backend("hf", str(not_lm))
    assert "\n" not in str(e.value)
    with pytest.raises(BackendError, match="did you mean 'hf'"):
        get_backend("hff", str(tiny_model_dir))
    with pytest.raises(BackendError, match="dtype"):
        get_backend("hf", str(tiny_model_dir), dtype="float8")


def test_count_tokens(backend):
    assert backend.count_tokens("1234") == 4 and backend.count_tokens("") == 0
    assert math.isfinite(backend.max_context) and backend.max_context == 512
