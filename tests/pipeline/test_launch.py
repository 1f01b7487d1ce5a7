"""Where stages run: in-process on a CPU, a child per GPU stage, accelerate launch for N training processes."""

from __future__ import annotations

import json
import sys

import pytest

from skillfactory.pipeline.launch import LauncherSpec, child_command, num_processes, run_stage, runs_in_child


def test_on_a_cpu_one_process_runs_in_process_and_n_processes_launch(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    spec = LauncherSpec()
    assert num_processes(spec) == 1 and not any(runs_in_child(spec, k) for k in ("sample", "sft", "eval"))
    two = LauncherSpec(num_processes=2)
    assert runs_in_child(two, "sft") and runs_in_child(two, "grpo") and not runs_in_child(two, "sample")
    cmd = child_command(two, "sft", tmp_path / "c.json")
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"] and cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[-4:] == ["-m", "skillfactory.pipeline.child", "sft", str(tmp_path / "c.json")]
    # generating stages never run once per rank
    assert child_command(two, "sample", tmp_path / "c.json")[:3] == [sys.executable, "-m", "skillfactory.pipeline.child"]


def test_on_gpus_every_heavy_stage_gets_a_child_and_training_uses_every_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    spec = LauncherSpec()
    assert num_processes(spec) == 4 and all(runs_in_child(spec, k) for k in ("sample", "reflect", "sft", "grpo", "eval"))
    zero3 = LauncherSpec(config_file="configs/accelerate/zero3.yaml")
    cmd = child_command(zero3, "grpo", tmp_path / "c.json")
    assert "--config_file" in cmd and cmd[cmd.index("--config_file") + 1].endswith("zero3.yaml")
    assert not runs_in_child(LauncherSpec(isolate="never"), "sft")


def test_a_stage_in_a_child_writes_what_it_writes_in_process(tiny_model_dir, tmp_path, monkeypatch):
    from skillfactory.sampling import SampleConfig

    def cfg(out):
        return SampleConfig(model=str(tiny_model_dir), task="countdown", params={"num_args": 2}, n=2, per_variant=1,
                            max_new_tokens=8, out=str(out))

    run_stage("sample", cfg(tmp_path / "here"), tmp_path / "here", LauncherSpec(isolate="never"))
    run_stage("sample", cfg(tmp_path / "child"), tmp_path / "child", LauncherSpec(isolate="always"))
    here, child = ((tmp_path / d / "samples.jsonl").read_bytes() for d in ("here", "child"))
    assert here == child and len(here.splitlines()) == 8
    assert json.loads((tmp_path / "child" / ".launch-config.json").read_text())["n"] == 2


def test_a_failing_child_names_the_stage_and_the_command(tmp_path):
    from skillfactory.errors import SkillFactoryError
    from skillfactory.sampling import SampleConfig

    bad = SampleConfig(model=str(tmp_path / "missing"), task="countdown", n=1, out=str(tmp_path / "o"))
    with pytest.raises(SkillFactoryError, match="stage sample .* exit status") as err:
        run_stage("sample", bad, tmp_path / "o", LauncherSpec(isolate="always"))
    assert "skillfactory.pipeline.child" in str(err.value)
