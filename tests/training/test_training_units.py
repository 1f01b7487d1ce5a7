"""Fast checks of the training stages' pieces (no trainer runs): configs, trace validation, chat templates,
the verifier reward, the train log and the exports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from skillfactory.config import ConfigError, validate
from skillfactory.tasks import get_task
from skillfactory.training.common import TrainingError, check_model_dir
from skillfactory.training.grpo import GRPORunConfig
from skillfactory.training.rewards import VerifierReward, completion_text
from skillfactory.training.sft import SFTRunConfig, load_traces, select_by_length

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def countdown():
    task = get_task("countdown", num_args=3)
    return task, task.generate(4, seed=0)


def _chat(answer: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": answer}]


# ---- configs ---------------------------------------------------------------------------------------------------
def test_presets_fill_unset_fields_and_keep_set_ones():
    pub = SFTRunConfig(model="m", traces="t", out="o")
    assert (pub.learning_rate, pub.lr_scheduler, pub.warmup_ratio, pub.epochs) == (1e-6, "cosine", 0.05, 2)
    tiny = SFTRunConfig(model="m", traces="t", out="o", preset="tiny", learning_rate=5e-3)
    assert tiny.learning_rate == 5e-3 and tiny.per_device_batch_size == 16
    grpo = GRPORunConfig(model="m", task="countdown", out="o")
    assert grpo.beta == 0.001 and grpo.num_generations == 16 and grpo.learning_rate == 1e-6


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="preset"):
        validate(SFTRunConfig, {"model": "m", "traces": "t", "out": "o", "preset": "huge"})
    with pytest.raises(ConfigError, match="num_generations"):
        validate(GRPORunConfig, {"model": "m", "task": "countdown", "out": "o", "preset": "tiny",
                                 "global_batch_size": 6, "num_generations": 4})
    with pytest.raises(ConfigError, match="lr_typo"):
        validate(GRPORunConfig, {"model": "m", "task": "countdown", "out": "o", "lr_typo": 1})


# ---- traces ----------------------------------------------------------------------------------------------------
def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_traces_with_a_bad_role_fail_naming_file_line_and_role(tmp_path):
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad = {"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}
    path = _write(tmp_path / "traces.jsonl", [good, bad])
    with pytest.raises(TrainingError) as err:
        load_traces(str(path))
    msg = str(err.value)
    assert f"{path}:2" in msg and "'system'" in msg and "\n" not in msg
    assert load_traces(str(_write(tmp_path / "ok.jsonl", [good]))) == [good["messages"]]
    with pytest.raises(TrainingError, match="no assistant turn"):
        load_traces(str(_write(tmp_path / "u.jsonl", [{"messages": [{"role": "user", "content": "q"}]}])))


def test_a_bad_trace_is_named_by_its_line_in_the_file_blank_lines_counted(tmp_path):
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path = tmp_path / "traces.jsonl"
    path.write_text(json.dumps(good) + "\n\n\n" + json.dumps({"id": "x"}) + "\n")
    with pytest.raises(TrainingError, match=r"traces\.jsonl:4: no 'messages' field"):
        load_traces(str(path))
    path.write_text("\n" + json.dumps(good) + "\n\n" + json.dumps({"messages": [{"role": "tool", "content": "t"}]}) + "\n")
    with pytest.raises(TrainingError, match=r"traces\.jsonl:4: message 0 has role 'tool'"):
        load_traces(str(path))


def test_traces_load_from_a_stage_folder_and_a_saved_dataset(tmp_path):
    from datasets import Dataset

    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    _write(tmp_path / "traces.jsonl", [{"messages": chat}])
    assert load_traces(str(tmp_path)) == [chat]
    Dataset.from_dict({"messages": [chat, chat]}).save_to_disk(str(tmp_path / "ds"))
    assert load_traces(str(tmp_path / "ds")) == [chat, chat]


def test_over_long_traces_are_skipped_and_counted_never_cut():
    cfg = SFTRunConfig(model="m", traces="t", out="o", max_length_cap=100)
    keep, max_len = select_by_length([10, 150, 90, 101], cfg, model_max=None)
    assert keep == [0, 2] and max_len == 90
    keep, max_len = select_by_length([10, 150, 90], cfg, model_max=50)
    assert keep == [0] and max_len == 10
    with pytest.raises(TrainingError, match="longer than"):
        select_by_length([200, 300], cfg, model_max=None)


# ---- model folder and chat template ----------------------------------------------------------------------------
def test_model_folder_without_tokenizer_fails_in_one_line(tmp_path, tiny_model_dir):
    (tmp_path / "config.json").write_text((Path(tiny_model_dir) / "config.json").read_text())
    with pytest.raises(TrainingError, match="no tokenizer") as err:
        check_model_dir(str(tmp_path))
    assert "\n" not in str(err.value)
    with pytest.raises(TrainingError, match="does not exist"):
        check_model_dir(str(tmp_path / "missing"))


def test_global_batch_is_the_same_on_any_number_of_processes():
    cfg = GRPORunConfig(model="m", out="o", task="countdown")  # published: 256 prompts x 16 rollouts
    assert cfg.prompts_per_step == 256
    for world in (1, 2, 8, 16):
        per_device, accumulation, total = cfg.batch_plan(world)
        assert (per_device, total) == (16, 4096) and per_device * accumulation * world == 4096
    tiny = SFTRunConfig(model="m", out="o", traces="t", preset="tiny", per_device_batch_size=8, global_batch_size=12)
    per_device, accumulation, total = tiny.batch_plan(2)
    assert total == 12 and per_device * accumulation * 2 == 12 and per_device <= 8
    with pytest.raises(TrainingError, match="multiple of 8"):
        GRPORunConfig(model="m", out="o", task="countdown", global_batch_size=4100, num_generations=4).batch_plan(8)
    # explicit accumulation without a global batch keeps the old meaning
    manual = SFTRunConfig(model="m", out="o", traces="t", per_device_batch_size=2, gradient_accumulation_steps=3)
    assert manual.global_batch_size is None and manual.batch_plan(2) == (2, 3, 12)


# ---- reward ----------------------------------------------------------------------------------------------------
def test_reward_is_the_verifier_and_rejects_a_reward_hacking_answer(countdown):
    task, qs = countdown
    q = qs[0]
    reward = VerifierReward()
    nums = q.fields["numbers"]
    # looks right (claims the target) but swaps a given number for another one
    hacked = f"<answer>{q.gold.replace(str(nums[0]), str(nums[0] + 1), 1)} = {q.fields['target']}</answer>"
    good = f"thinking...\n<answer>{q.gold}</answer>"
    wrong_last = f"<answer>{q.gold}</answer> wait, no: <answer>{nums[0]}</answer>"
    cols = [q.model_dump_json()] * 3
    completions = [_chat(good), _chat(hacked), _chat(wrong_last)]
    assert reward(prompts=[None] * 3, completions=completions, question=cols) == [1.0, 0.0, 0.0]
    # plain-text completions and dict questions work too
    assert reward(prompts=[None], completions=[good], question=[q.model_dump()]) == [1.0]


def test_reward_logs_skill_counts_per_completion(countdown):
    _, qs = countdown
    logged: dict[str, float] = {}
    text = ("<think><sample>1</sample><reflect><verdict>Incorrect</verdict></reflect>"
            "<sample>2</sample><reflect><verdict>Correct</verdict></reflect></think><answer>x</answer>")
    VerifierReward()(prompts=[None, None], completions=[_chat(text), _chat("<answer>x</answer>")],
                     question=[qs[0].model_dump_json()] * 2, log_metric=logged.__setitem__)
    assert logged == {"skills/attempts": 1.0, "skills/reflections": 1.0, "skills/verdicts": 1.0}
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"


# ---- train log -------------------------------------------------------------------------------------------------
def test_train_log_maps_trl_names_and_is_cut_back_on_resume(tmp_path):
    from skillfactory.training.callbacks import log_row, truncate_log

    row = log_row("grpo", 3, 0.5, {"loss": 0.1, "reward": 0.25, "completions/mean_length": 40.0,
                                    "completions/clipped_ratio": 0.5, "skills/attempts": 2.0, "note": "x"})
    assert row["reward_mean"] == 0.25 and row["completion_length"] == 40.0 and row["clipped_ratio"] == 0.5
    assert row["attempts"] == 2.0 and row["stage"] == "grpo" and "note" not in row
    path = _write(tmp_path / "train_log.jsonl", [{"step": s} for s in (1, 2, 3, 4)])
    assert truncate_log(path, 2) == 2
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [1, 2]


# ---- exports ---------------------------------------------------------------------------------------------------
def _import_by_path(path: Path):
    """Load a module from a file the way verl's load_extern_object does (spec_from_file_location)."""
    spec = importlib.util.spec_from_file_location(f"custom_module_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llamafactory_export_is_sharegpt_with_published_sft_yaml(tmp_path):
    import yaml

    from skillfactory.training.export.llamafactory import LlamaFactoryExportConfig, export_llamafactory

    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "<answer>1</answer>"}]
    traces = _write(tmp_path / "traces.jsonl", [{"messages": chat}] * 3)
    out = tmp_path / "lf"
    assert export_llamafactory(LlamaFactoryExportConfig(traces=str(traces), out=str(out)))["examples"] == 3
    info = json.loads((out / "dataset_info.json").read_text())
    entry = info["skillfactory_traces"]
    assert entry["formatting"] == "sharegpt"
    data = json.loads((out / entry["file_name"]).read_text())
    assert data[0]["conversations"] == [{"from": "human", "value": "q"}, {"from": "gpt", "value": "<answer>1</answer>"}]
    train = yaml.safe_load((out / "sft.yaml").read_text())
    assert (train["learning_rate"], train["num_train_epochs"], train["lr_scheduler_type"], train["warmup_ratio"]) == \
        (1e-6, 2.0, "cosine", 0.05)
    assert train["dataset"] == "skillfactory_traces" and train["stage"] == "sft"


def test_accelerate_export_matches_the_repo_configs(tmp_path):
    import yaml

    from skillfactory.training.export.accelerate import AccelerateExportConfig, export_accelerate

    summary = export_accelerate(AccelerateExportConfig(out=str(tmp_path)))
    kinds = {}
    for name in ("ddp", "zero2", "zero3", "fsdp"):
        written = (tmp_path / f"{name}.yaml").read_text()
        assert written == (REPO / "configs" / "accelerate" / f"{name}.yaml").read_text(), name
        kinds[name] = yaml.safe_load(written)
    assert kinds["ddp"]["distributed_type"] == "MULTI_GPU"
    assert kinds["zero2"]["deepspeed_config"]["zero_stage"] == 2
    assert kinds["zero3"]["deepspeed_config"]["zero_stage"] == 3
    assert kinds["fsdp"]["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    assert len(summary["commands"]) == 4 and all("accelerate launch --config_file" in c for c in summary["commands"])


def test_trainer_arguments_set_checkpointing_under_the_name_transformers_uses(tmp_path):
    import warnings

    from trl import SFTConfig

    from skillfactory.training.common import trainer_kwargs

    cfg = SFTRunConfig(model="m", traces="t.jsonl", out=str(tmp_path / "sft"), preset="tiny")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # the renamed argument warned on every training run
        args = SFTConfig(**trainer_kwargs(cfg))
    assert args.gradient_checkpointing is False  # CPU: off (6x slower on)
    cfg = SFTRunConfig(model="m", traces="t.jsonl", out=str(tmp_path / "sft"), preset="tiny",
                       gradient_checkpointing=True)
    assert SFTConfig(**trainer_kwargs(cfg)).gradient_checkpointing is True
