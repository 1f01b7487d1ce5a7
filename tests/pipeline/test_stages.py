"""Pipeline stage adapters: the toy base model is built in a child process, never in the pipeline's own."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from skillfactory.errors import SkillFactoryError
from skillfactory.pipeline.stages import run_base_model


def test_an_uncached_toy_model_is_built_by_a_child_process(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLFACTORY_CACHE", str(tmp_path))
    calls = []

    def fake_run(cmd, check):
        calls.append(cmd)
        return SimpleNamespace(returncode=3)

    monkeypatch.setattr(subprocess, "run", fake_run)
    stage = SimpleNamespace(settings={"toy": {"preset": "micro", "seed": 4}})
    with pytest.raises(SkillFactoryError, match=r"preset micro, seed 4\) failed with exit status 3"):
        run_base_model(stage, {})
    assert calls == [[sys.executable, "-m", "skillfactory", "toy", "build", "--preset", "micro", "--seed", "4"]]


def test_a_cached_toy_model_starts_no_child(tmp_path, monkeypatch):
    from skillfactory.toy.build import BUILD_INFO, cached_path

    monkeypatch.setenv("SKILLFACTORY_CACHE", str(tmp_path))
    folder = cached_path("micro", 0)
    folder.mkdir(parents=True)
    (folder / BUILD_INFO).write_text("{}")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("started a child for a cached model"))
    assert run_base_model(SimpleNamespace(settings={"toy": {"preset": "micro", "seed": 0}}), {}) == folder
