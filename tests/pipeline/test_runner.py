"""The pipeline runner: skip finished stages, resume interrupted ones, re-run exactly what a change affects."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from skillfactory.pipeline.runner import DONE, PENDING, PlanError, Stage, assign_keys, execute, stage_status


class Boom(Exception):
    pass


def make_stages(tmp_path, calls, settings_b=None, fail_in=None):
    """a -> b -> c, each writing a file whose content chains its inputs."""

    def run(stage, inputs):
        calls.append(stage.name)
        if fail_in == stage.name:
            (stage.out / "partial.txt").write_text("half")
            raise Boom(stage.name)
        text = stage.name + "(" + ",".join(p.read_text() for p in inputs.values()) + ")"
        if (stage.out / "partial.txt").exists():
            text += "+resumed"
        out = stage.out / "out.txt"
        out.write_text(text)
        return out

    stages = [
        Stage("a", "a", tmp_path / "a", {"x": 1}, run),
        Stage("b", "b", tmp_path / "b", settings_b or {"y": 1}, run, ["a"]),
        Stage("c", "c", tmp_path / "c", {"z": 1}, run, ["b"]),
    ]
    assign_keys(stages)
    return stages


def quiet():
    return Console(file=open("/dev/null", "w"))


def test_second_run_is_all_cached(tmp_path):
    calls = []
    out = execute(make_stages(tmp_path, calls), quiet())
    assert calls == ["a", "b", "c"]
    assert out["c"].read_text() == "c(b(a()))"
    calls.clear()
    out2 = execute(make_stages(tmp_path, calls), quiet())
    assert calls == []
    assert out2["c"] == out["c"]


def test_changed_setting_reruns_exactly_downstream(tmp_path):
    calls = []
    execute(make_stages(tmp_path, calls), quiet())
    calls.clear()
    execute(make_stages(tmp_path, calls, settings_b={"y": 2}), quiet())
    assert calls == ["b", "c"]


def test_interrupted_stage_resumes_and_keeps_finished_work(tmp_path):
    calls = []
    with pytest.raises(Boom):
        execute(make_stages(tmp_path, calls, fail_in="b"), quiet())
    stages = make_stages(tmp_path, [], fail_in=None)
    assert stage_status(stages[0]) == "cached"
    assert stage_status(stages[1]) == "resume"
    assert (tmp_path / "b" / PENDING).exists() and not (tmp_path / "b" / DONE).exists()
    calls.clear()
    out = execute(make_stages(tmp_path, calls), quiet())
    assert calls == ["b", "c"]  # a not redone
    assert out["b"].read_text() == "b(a())+resumed"  # the stage saw its partial work
    assert json.loads((tmp_path / "b" / DONE).read_text())["key"] == stages[1].key


def test_stale_partial_work_is_cleared_when_settings_change(tmp_path):
    with pytest.raises(Boom):
        execute(make_stages(tmp_path, [], fail_in="b"), quiet())
    out = execute(make_stages(tmp_path, [], settings_b={"y": 3}), quiet())
    assert out["b"].read_text() == "b(a())"  # the partial file of the old settings was removed


def test_only_and_from(tmp_path):
    calls = []
    with pytest.raises(PlanError, match="needs a finished first"):
        execute(make_stages(tmp_path, calls), quiet(), only="b")
    execute(make_stages(tmp_path, calls), quiet())
    calls.clear()
    execute(make_stages(tmp_path, calls), quiet(), from_="b")
    assert calls == ["b", "c"]
    calls.clear()
    execute(make_stages(tmp_path, calls), quiet(), only="c")
    assert calls == []  # cached
    with pytest.raises(PlanError, match="no stage named 'nope'"):
        execute(make_stages(tmp_path, calls), quiet(), only="nope")
