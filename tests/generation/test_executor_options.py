"""Choosing the executor (no Ray needed): recipe ``launcher.executor`` reaches sample/reflect/eval without entering
their cache keys; a stage section may not set it; without Ray installed the error names the extra to install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from skillfactory.errors import SkillFactoryError
from skillfactory.generation.runner import ExecutorConfig, backend_factory, open_executor
from skillfactory.pipeline.plan import build_plan
from skillfactory.pipeline.recipe import Recipe

RECIPE = {"name": "x", "out": "runs-x", "base_model": {"path": "/models/m"}, "task": {"name": "countdown"},
          "arms": ["skillfactory"], "sample": {"n": 2}, "eval": {"suite": "quick"}}


def plan(**extra):
    return {s.kind: s for s in build_plan(Recipe.model_validate({**RECIPE, **extra}))}


def test_launcher_executor_reaches_the_generating_stages_outside_their_keys(monkeypatch, tmp_path):
    local = plan()
    ray = plan(launcher={"executor": {"name": "ray", "replicas": 2, "address": "auto"}})
    for kind in ("sample", "reflect", "eval"):
        assert ray[kind].key == local[kind].key and "executor" not in ray[kind].settings
    seen = {}
    monkeypatch.setattr("skillfactory.pipeline.launch.run_stage",
                        lambda kind, cfg, out, spec: seen.setdefault(kind, cfg))
    stages = ray
    stages["sample"].run(stages["sample"], {"base_model": Path("/models/m")})
    stages["reflect"].run(stages["reflect"], {"sample": tmp_path / "samples.jsonl"})
    stages["eval"].run(stages["eval"], {"base_model": Path("/models/m")})
    for kind in ("sample", "reflect", "eval"):
        assert seen[kind].executor == ExecutorConfig(name="ray", replicas=2, address="auto")


def test_a_stage_section_cannot_choose_the_executor():
    with pytest.raises(SkillFactoryError, match="launcher.executor"):
        plan(sample={"n": 2, "executor": "ray"})


def test_missing_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    ex = open_executor(ExecutorConfig(name="ray", replicas=2), backend_factory("hf", "m", {}), "hf")
    with pytest.raises(SkillFactoryError, match=r"pip install 'skillfactory\[ray\]'"):
        ex.start()


def test_ray_is_refused_where_it_cannot_help():
    with pytest.raises(SkillFactoryError, match="base_urls"):
        open_executor(ExecutorConfig(name="ray"), backend_factory("openai", "m", {}), "openai")
    with pytest.raises(SkillFactoryError, match="backend object"):
        open_executor(ExecutorConfig(name="ray"), backend_factory("hf", "m", {}), "hf", backend_object=object())
