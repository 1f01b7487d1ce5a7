"""benchmarks/gpu_check.py: it cannot run its GPU path here, so check what can be: --help, the clear refusal
without CUDA, the tiny Qwen2.5-style model it builds, and (slow) the whole stage chain in --cpu-plumbing mode."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_help_works_without_a_gpu():
    proc = _run("--help")
    assert proc.returncode == 0, proc.stderr
    for flag in ("--model", "--out", "--cpu-plumbing", "--vllm-memory", "--stage-timeout"):
        assert flag in proc.stdout


def test_without_cuda_it_exits_with_one_clear_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    proc = _run("--out", str(tmp_path / "gc"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no CUDA GPU" in proc.stderr and "--cpu-plumbing" in proc.stderr
    assert not (tmp_path / "gc").exists()  # nothing built before the refusal


def test_tiny_model_is_qwen2_with_qwen25_template_and_special_tokens(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    gc = _load()
    folder = gc.build_tiny_qwen(tmp_path / "m", "countdown", {"num_args": 3})
    assert AutoConfig.from_pretrained(folder).model_type == "qwen2"
    tok = AutoTokenizer.from_pretrained(folder)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    text = tok.apply_chat_template([{"role": "user", "content": "Make 22 from [3, 5, 7]."}], tokenize=False,
                                   add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\nYou are Qwen") and text.endswith("<|im_start|>assistant\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text  # byte-level BPE: lossless
    assert ids.count(tok.convert_tokens_to_ids("<|im_start|>")) == 3  # each special token is one token
    gen = json.loads((folder / "generation_config.json").read_text())
    assert gen["eos_token_id"] == [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]


@pytest.mark.slow
def test_cpu_plumbing_runs_every_stage_and_passes(tmp_path):
    out = tmp_path / "gc"
    proc = _run("--cpu-plumbing", "--out", str(out), "--questions", "2", "--max-new-tokens", "32",
                "--sft-steps", "2", "--grpo-steps", "1", timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    record = json.loads((out / "gpu_check.json").read_text())
    assert [s["name"] for s in record["stages"]] == ["sample", "reflect", "traces", "sft", "grpo", "eval"]
    assert all(c["pass"] for c in record["checks"]) and len(record["checks"]) == 11
    assert "11/11 checks passed" in proc.stdout
    assert _run("--cpu-plumbing", "--out", str(out)).returncode == 2  # an earlier check: --force or a new --out
