"""The toy build: micro builds and loads in HF format; the cache hits, rebuilds on --force, and never keeps a
half-built model."""

from __future__ import annotations

import json

import pytest

from skillfactory.toy import build as toy_build


def test_micro_builds_and_loads_with_auto_classes(micro_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(micro_model)
    model = AutoModelForCausalLM.from_pretrained(micro_model)
    assert "{% generation %}" in tok.chat_template
    msgs = [{"role": "user", "content": "What is 12 x 34?"}]
    ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]
    info = json.loads((micro_model / toy_build.BUILD_INFO).read_text())
    assert info["preset"] == "micro" and info["check_disagreements"] == 0
    assert info["train"]["steps"] > 0 and info["train"]["final_loss_ema"] > 0
    assert (micro_model / "manifest.json").exists() and (micro_model / "config.yaml").exists()


def test_micro_trains_loss_down(micro_model):
    log = [json.loads(line) for line in (micro_model / "pretrain_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"] - 0.5


def _fake_builder(calls):
    def fake(cfg, seed, out, quiet=False):
        calls.append(seed)
        (out / "weights.bin").write_text(f"built {len(calls)}")
        return {"preset": cfg.name, "seed": seed}

    return fake


def test_cache_hit_does_not_rebuild_and_force_does(tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setenv("SKILLFACTORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(toy_build, "build_model_dir", _fake_builder(calls))
    first = toy_build.build_toy_model("tiny", seed=1)
    assert first.parent == tmp_path / "cache" / "toy" and first.name.startswith("tiny-s1-")
    assert toy_build.build_toy_model("tiny", seed=1) == first and len(calls) == 1
    out = toy_build.build_toy_model("tiny", seed=1, out=tmp_path / "copy")
    assert len(calls) == 1 and (out / "weights.bin").read_text() == "built 1"
    toy_build.build_toy_model("tiny", seed=1, force=True)
    assert len(calls) == 2 and (first / "weights.bin").read_text() == "built 2"
    toy_build.build_toy_model("tiny", seed=2)
    assert len(calls) == 3  # another seed is another model


def test_crash_leaves_no_half_model(tmp_path, monkeypatch):
    def crash(cfg, seed, out, quiet=False):
        (out / "half.bin").write_text("x")
        raise RuntimeError("killed")

    monkeypatch.setenv("SKILLFACTORY_CACHE", str(tmp_path))
    monkeypatch.setattr(toy_build, "build_model_dir", crash)
    with pytest.raises(RuntimeError):
        toy_build.build_toy_model("micro", seed=0)
    assert not toy_build.is_built(toy_build.cached_path("micro", 0))
    assert list((tmp_path / "toy").iterdir()) == []


def test_unknown_preset_is_a_one_line_error():
    from skillfactory.errors import SkillFactoryError

    with pytest.raises(SkillFactoryError, match="micro, tiny"):
        toy_build.build_toy_model("huge")


def test_cli_build_and_eval(micro_model, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from skillfactory.cli import app

    monkeypatch.setenv("SKILLFACTORY_CACHE", str(micro_model.parent.parent))
    res = CliRunner().invoke(app, ["toy", "build", "--preset", "micro", "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "cached" in res.output and (tmp_path / "m" / "model.safetensors").exists()
    res = CliRunner().invoke(app, ["toy", "eval", str(tmp_path / "m"), "-n", "1", "--k", "4", "--reflections", "4",
                                   "--max-new-tokens", "8", "--out", str(tmp_path / "eval.json")])
    assert res.exit_code == 0, res.output
    result = json.loads((tmp_path / "eval.json").read_text())
    assert {(r["task"], r["size"]) for r in result["rows"]} == {
        ("countdown", 2), ("countdown", 3), ("countdown", 4), ("multiplication", 2), ("multiplication", 3)}
    assert all(r["samples"] == 4 and 0 <= r["pass@1"] <= r["pass@4"] <= 1 for r in result["rows"])
    assert result["reflection"]["all"]["reflections"] == 4


def test_pretraining_leaves_the_process_thread_count_as_it_found_it():
    import torch

    from skillfactory.toy.model import ArchConfig, build_model
    from skillfactory.toy.presets import TrainConfig
    from skillfactory.toy.pretrain import pretrain

    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    model = build_model(ArchConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                                   max_position_embeddings=64), 32, 0, 1, 2)
    examples = [([1, 5, 6, 7, 2], 2)] * 8
    pretrain(model, examples, TrainConfig(batch_size=4, threads=other), seed=0, pad_id=0)
    assert torch.get_num_threads() == before
