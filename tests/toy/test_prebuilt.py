"""The tiny model shipped in the package (issue #16): used instead of pretraining when its key matches, copied into
the cache atomically, ignored on --force or for any other key, and a fresh build (minus the pretraining) makes the
same tokenizer, chat template and config as the shipped one."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from skillfactory.toy import build as toy_build

SHIPPED = toy_build.PREBUILT_DIR / "tiny-s0-4ee42deb83"


def _no_build(cfg, seed, out, quiet=False):
    pytest.fail(f"built toy[{cfg.name}] seed {seed} although a prebuilt model is shipped")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLFACTORY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_shipped_model_matches_the_current_tiny_preset():
    assert toy_build.is_built(SHIPPED)
    assert toy_build.prebuilt_path("tiny", 0) == SHIPPED, (
        "the tiny preset or the corpus changed, so the shipped model in src/skillfactory/toy/prebuilt/ is stale: "
        "rebuild it (`skillfactory toy build --preset tiny --seed 0 --force`) and replace the folder, see its README")
    total = sum(f.stat().st_size for f in SHIPPED.iterdir())
    assert total <= 20 * 2**20
    info = json.loads((SHIPPED / toy_build.BUILD_INFO).read_text())
    assert info["preset"] == "tiny" and info["seed"] == 0 and info["corpus_version"] == toy_build.CORPUS_VERSION


def test_tiny_is_copied_from_the_package_not_built_and_loads(cache, monkeypatch, capsys):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setattr(toy_build, "build_model_dir", _no_build)
    path = toy_build.build_toy_model("tiny", 0)
    assert path == cache / "toy" / SHIPPED.name and toy_build.is_built(path)
    assert sorted(f.name for f in path.iterdir()) == sorted(f.name for f in SHIPPED.iterdir())
    for f in SHIPPED.iterdir():
        assert (path / f.name).read_bytes() == f.read_bytes(), f.name
    assert [p.name for p in (cache / "toy").iterdir()] == [SHIPPED.name]  # no temp folder left behind
    assert "prebuilt model shipped in the package" in capsys.readouterr().err

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert "{% generation %}" in tok.chat_template
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 12 x 34?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=5, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids["input_ids"].shape[1]

    capsys.readouterr()  # transformers' own loading bars
    assert toy_build.build_toy_model("tiny", 0) == path  # now a plain cache hit: no copy, no line
    assert capsys.readouterr().err == ""


def test_quiet_copy_prints_nothing_and_out_gets_a_copy(cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(toy_build, "build_model_dir", _no_build)
    out = toy_build.build_toy_model("tiny", 0, out=tmp_path / "m", quiet=True)
    assert out == tmp_path / "m" and (out / "model.safetensors").read_bytes() == (
        SHIPPED / "model.safetensors").read_bytes()
    assert toy_build.is_built(cache / "toy" / SHIPPED.name)
    assert capsys.readouterr().err == ""


def test_force_builds_from_scratch_instead_of_copying(cache, monkeypatch):
    calls = []

    def fake(cfg, seed, out, quiet=False):
        calls.append((cfg.name, seed))
        (out / "weights.bin").write_text("fresh")
        return {"preset": cfg.name, "seed": seed}

    monkeypatch.setattr(toy_build, "build_model_dir", fake)
    path = toy_build.build_toy_model("tiny", 0, force=True, quiet=True)
    assert calls == [("tiny", 0)] and (path / "weights.bin").read_text() == "fresh"
    assert not (path / "model.safetensors").exists()
    toy_build.build_toy_model("tiny", 0, quiet=True)  # the fresh build is the cache now: no copy over it
    assert calls == [("tiny", 0)] and (path / "weights.bin").exists()


def test_other_keys_get_no_prebuilt_model(monkeypatch, tmp_path):
    assert toy_build.prebuilt_path("micro", 0) is None
    assert toy_build.prebuilt_path("tiny", 1) is None
    tiny = toy_build.get_preset("tiny")
    changed = tiny.model_copy(update={"vocab_size": tiny.vocab_size + 1})
    monkeypatch.setattr(toy_build, "get_preset", lambda name: changed)
    assert toy_build.model_key(changed, 0) != SHIPPED.name
    assert toy_build.prebuilt_path("tiny", 0) is None  # a changed preset ignores the stale shipped model


def test_an_incomplete_prebuilt_folder_is_ignored(monkeypatch, tmp_path):
    half = tmp_path / SHIPPED.name
    half.mkdir()
    (half / "config.json").write_text("{}")  # no toy_build.json
    monkeypatch.setattr(toy_build, "PREBUILT_DIR", tmp_path)
    assert toy_build.prebuilt_path("tiny", 0) is None


def test_pipeline_copies_the_prebuilt_model_without_a_child(cache, monkeypatch):
    import subprocess

    from skillfactory.pipeline.stages import run_base_model

    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("started a child for a prebuilt model"))
    monkeypatch.setattr(toy_build, "build_model_dir", _no_build)
    path = run_base_model(SimpleNamespace(settings={"toy": {"preset": "tiny", "seed": 0}}), {})
    assert path == cache / "toy" / SHIPPED.name and toy_build.is_built(path)


def test_cli_build_says_prebuilt(cache, monkeypatch):
    from typer.testing import CliRunner

    from skillfactory.cli import app

    monkeypatch.setattr(toy_build, "build_model_dir", _no_build)
    res = CliRunner().invoke(app, ["toy", "build", "--preset", "tiny"])
    assert res.exit_code == 0, res.output
    assert f"prebuilt: {cache / 'toy' / SHIPPED.name}" in res.output
    res = CliRunner().invoke(app, ["toy", "build", "--preset", "tiny"])
    assert res.exit_code == 0 and "cached:" in res.output


def _json(path, drop=("transformers_version",)):
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in drop}


def test_a_fresh_build_makes_the_shipped_tokenizer_and_config(tmp_path, monkeypatch):
    """build_model_dir for tiny seed 0 with its pretraining stubbed out (the real one takes ~10 min): corpus,
    tokenizer, chat template, config and the build's counts equal the shipped model's."""
    from skillfactory.toy import pretrain as toy_pretrain

    shipped_info = json.loads((SHIPPED / toy_build.BUILD_INFO).read_text())

    def no_pretrain(model, examples, cfg, seed, pad_id, progress=None, log=None, n_warmup=0):
        assert len(examples) == shipped_info["train"]["examples"]
        return dict(shipped_info["train"])

    monkeypatch.setattr(toy_pretrain, "encode_conversations",
                        lambda tok, convs: [([0], 0)] * len(convs))  # only pretraining reads the encoded corpus
    monkeypatch.setattr(toy_pretrain, "pretrain", no_pretrain)
    out = tmp_path / "fresh"
    out.mkdir()
    info = toy_build.build_model_dir(toy_build.get_preset("tiny"), 0, out, quiet=True)

    drift = ("the tiny corpus for seed 0 is no longer the one the shipped model was trained on, but its key is the "
             "same: bump CORPUS_VERSION (toy/corpus.py) and rebuild + replace the shipped model (see its README)")
    assert (out / "corpus_sample.jsonl").read_bytes() == (SHIPPED / "corpus_sample.jsonl").read_bytes(), drift
    for key in ("preset", "seed", "corpus_version", "parameters", "vocab_size", "conversations", "corpus_stats",
                "check_disagreements"):
        assert info[key] == shipped_info[key], f"{key}: {drift}"
    assert (out / "tokenizer.json").read_bytes() == (SHIPPED / "tokenizer.json").read_bytes()
    assert (out / "chat_template.jinja").read_bytes() == (SHIPPED / "chat_template.jinja").read_bytes()
    assert _json(out / "tokenizer_config.json") == _json(SHIPPED / "tokenizer_config.json")
    assert _json(out / "config.json") == _json(SHIPPED / "config.json")
    assert _json(out / "generation_config.json") == _json(SHIPPED / "generation_config.json")
    assert (out / "config.yaml").read_bytes() == (SHIPPED / "config.yaml").read_bytes()
    manifest = json.loads((out / "manifest.json").read_text())
    shipped_manifest = json.loads((SHIPPED / "manifest.json").read_text())
    assert manifest["cache_key"] == shipped_manifest["cache_key"] and manifest["counts"] == shipped_manifest["counts"]
