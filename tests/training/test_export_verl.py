"""verl export: parquet rows, the reward module loaded by path, and run_grpo.sh executed against a stub verl.

verl itself is not installed here (it needs ray and a GPU torch). The stub is a fake ``verl`` package on
PYTHONPATH - a dist-info with a chosen version and a ``verl.trainer.main_ppo`` that records its argv - so the
script's version check and the exact words verl would receive are tested, not just the script's text.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skillfactory.config import ConfigError, validate
from skillfactory.training.export.verl import VERL_CHECKED, VerlExportConfig, export_verl, overrides


def _import_by_path(path: Path):
    """Load a module from a file the way verl's load_extern_object does (spec_from_file_location)."""
    spec = importlib.util.spec_from_file_location(f"custom_module_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("verl")
    summary = export_verl(VerlExportConfig(task="countdown", params={"num_args": 3}, n=12, train_batch_size=4,
                                           epochs=2, out=str(out)))
    return out, summary


def test_rows_and_reward_module(exported):
    import pyarrow.parquet as pq

    out, summary = exported
    assert (summary["train"], summary["test"], summary["steps"]) == (12, 1, 6)  # 12 // 4 x 2 epochs
    rows = pq.read_table(out / "train.parquet").to_pylist()
    assert len(rows) == 12 and {r["data_source"] for r in rows} == {"skillfactory/countdown"}
    r = rows[0]
    assert r["prompt"][0]["role"] == "user" and "<answer>" in r["prompt"][0]["content"]
    assert r["reward_model"]["style"] == "rule"
    test_ids = {json.loads(x["extra_info"]["question"])["id"] for x in pq.read_table(out / "test.parquet").to_pylist()}
    assert not test_ids & {json.loads(x["extra_info"]["question"])["id"] for x in rows}

    reward = _import_by_path(out / "reward.py")
    gold = [f"<answer>{x['reward_model']['ground_truth']}</answer>" for x in rows]
    assert [reward.compute_score(x["data_source"], g, x["reward_model"]["ground_truth"], x["extra_info"])
            for x, g in zip(rows, gold)] == [1.0] * 12
    assert reward.compute_score(r["data_source"], gold[1], "", r["extra_info"]) == 0.0  # another question's answer
    batch = reward.compute_score_batch(data_sources=[x["data_source"] for x in rows], solution_strs=gold[::-1],
                                       ground_truths=[""] * 12, extra_infos=[x["extra_info"] for x in rows])
    assert len(batch) == 12 and sum(batch) < 12
    with pytest.raises(ValueError, match="extra_info"):
        reward.compute_score("s", gold[0], "", None)


def test_script_text_names_versions_steps_and_settings(exported):
    out, _ = exported
    script = (out / "run_grpo.sh").read_text()
    assert f"verl {VERL_CHECKED[0]} to {VERL_CHECKED[1]}" in script and "transfer_queue" in script
    assert "verl[vllm]" in script
    assert "# 6 GRPO steps: 12 rows // data.train_batch_size 4 x trainer.total_epochs 2" in script
    for setting in ("algorithm.adv_estimator=grpo", "actor_rollout_ref.rollout.n=16", "data.train_batch_size=4",
                    "actor.ppo_mini_batch_size=4", "trainer.total_epochs=2", "data.max_prompt_length=512",
                    "data.max_response_length=4096", "actor.optim.lr=1e-6", "actor.use_kl_loss=True",
                    "actor.kl_loss_coef=0.001", "reward.custom_reward_function.path="):
        assert setting in script
    assert "reward_manager" not in script.split("PY\nfi", 1)[1]  # `batch` is unknown in verl 0.9.x
    subprocess.run(["bash", "-n", str(out / "run_grpo.sh")], check=True)


def _stub_verl(root: Path, version: str) -> Path:
    """A fake verl (and vllm, transfer_queue) whose main_ppo writes its argv to $ARGV_OUT."""
    pkg = root / "verl"
    (pkg / "trainer").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "trainer" / "__init__.py").write_text("")
    (pkg / "trainer" / "main_ppo.py").write_text(
        "import json, os, sys\nopen(os.environ['ARGV_OUT'], 'w').write(json.dumps(sys.argv[1:]))\n")
    dist = root / f"verl-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: verl\nVersion: {version}\n")
    for mod in ("vllm", "transfer_queue"):
        (root / mod).mkdir()
        (root / mod / "__init__.py").write_text("")
    return root


def _run_script(out: Path, stub: Path, cwd: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    argv_out = cwd / "argv.json"
    env = {**os.environ, "PYTHON": sys.executable, "ARGV_OUT": str(argv_out), "MODEL": "/models/my model",
           "N_GPUS": "2", "PYTHONPATH": os.pathsep.join([str(stub), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(["bash", str(out / "run_grpo.sh"), *extra], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    return proc, argv_out


@pytest.mark.parametrize("version", ["0.7.1", "0.9.1"])
def test_script_passes_each_override_as_one_word(exported, tmp_path, version):
    out, _ = exported
    stub = _stub_verl(tmp_path / "site", version)
    work = tmp_path / "work"
    work.mkdir()
    (work / "trainer.logger=c").write_text("")  # an unquoted trainer.logger=[console] would glob to this file
    proc, argv_out = _run_script(out, stub, work, "trainer.total_epochs=3")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    argv = json.loads(argv_out.read_text())
    assert "trainer.logger=[console]" in argv and "trainer.logger=c" not in argv
    assert f"data.train_files={out}/train.parquet" in argv
    assert "actor_rollout_ref.model.path=/models/my model" in argv and "trainer.n_gpus_per_node=2" in argv
    assert argv[-1] == "trainer.total_epochs=3"  # extra overrides come last (Hydra: the last one wins)
    expected = {f"{k}={v}" for k, v in overrides(VerlExportConfig(task="countdown", n=12, train_batch_size=4,
                                                                  epochs=2, out="x")).items()}
    assert expected <= set(argv) and len(argv) == 36 + 1


def test_script_refuses_old_verl_and_warns_on_newer(exported, tmp_path):
    out, _ = exported
    proc, argv_out = _run_script(out, _stub_verl(tmp_path / "old", "0.7.0"), tmp_path)
    assert proc.returncode != 0 and not argv_out.exists()
    assert "verl 0.7.0 is too old" in proc.stderr and "0.7.1 to 0.9.1" in proc.stderr
    proc, argv_out = _run_script(out, _stub_verl(tmp_path / "new", "0.10.0"), tmp_path)
    assert proc.returncode == 0 and argv_out.exists() and "newer than" in proc.stderr


def test_fewer_rows_than_one_batch_is_a_one_line_error():
    with pytest.raises(ConfigError) as e:
        validate(VerlExportConfig, {"task": "countdown", "n": 100, "out": "x"}, "export verl")
    msg = str(e.value)
    assert "\n" not in msg and "-n 100" in msg and "--train-batch-size 256" in msg and "0 steps" in msg
    assert "--train-batch-size <= 100" in msg


def test_defaults_give_a_real_run_and_the_cli_prints_the_steps(tmp_path):
    cfg = VerlExportConfig(task="countdown", out="x")
    assert cfg.train_batch_size == 256 and cfg.steps >= 40
    ov = overrides(cfg)
    assert ov["data.train_batch_size"] == 256 and ov["actor_rollout_ref.actor.ppo_mini_batch_size"] == 64

    from skillfactory.cli import app

    res = CliRunner().invoke(app, ["export", "verl", "--task", "countdown", "-n", "20", "--train-batch-size", "8",
                                   "--out", str(tmp_path / "v")])
    assert res.exit_code == 0, res.output
    assert "2 GRPO steps (20 rows // batch 8 x 1 epoch(s))" in res.output
    res = CliRunner().invoke(app, ["export", "verl", "--task", "countdown", "-n", "20", "--out", str(tmp_path / "w")])
    assert isinstance(res.exception, ConfigError) and "-n 20" in str(res.exception)
