"""Recipes -> stage plans: the arms get the stages they need, and the same GRPO settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from skillfactory.config import ConfigError
from skillfactory.pipeline.plan import build_plan
from skillfactory.pipeline.recipe import load_recipe

REPO = Path(__file__).resolve().parents[2]
RECIPE = """
name: t
out: {out}
base_model: {{toy: {{preset: micro}}}}
task: {{name: countdown, params: {{num_args: 3}}}}
arms: {arms}
grpo: {{max_steps: 3}}
"""


def write(tmp_path, arms="[rl_only, skillfactory, sft_only]", **extra):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(out=tmp_path / "run", arms=arms) + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    return path


def test_default_arms_plan(tmp_path):
    stages = build_plan(load_recipe(write(tmp_path)))
    names = [s.name for s in stages]
    assert names == [
        "base_model", "sample", "reflect", "traces/skillfactory", "sft/skillfactory", "grpo/skillfactory",
        "grpo/rl_only", "eval/base", "eval/sft_only", "eval/skillfactory", "eval/rl_only", "report",
    ]
    by = {s.name: s for s in stages}
    assert by["grpo/rl_only"].deps == ["base_model"]
    assert by["grpo/skillfactory"].deps == ["sft/skillfactory"]
    assert by["eval/sft_only"].deps == ["sft/skillfactory"]
    # equal RL budget: both GRPO arms have the same settings (so only their inputs differ)
    assert by["grpo/rl_only"].settings == by["grpo/skillfactory"].settings
    assert len({s.key for s in stages}) == len(stages)


def test_ablation_arms_use_their_trace_format(tmp_path):
    stages = build_plan(load_recipe(write(tmp_path, arms="[no_reflection, random]")))
    by = {s.name: s for s in stages}
    assert by["traces/no_reflection"].settings["formats"] == ["no_reflection"]
    assert by["traces/random"].settings["formats"] == ["random"]
    assert "grpo/rl_only" not in by


def test_keys_change_only_downstream_of_a_setting(tmp_path):
    a = {s.name: s.key for s in build_plan(load_recipe(write(tmp_path)))}
    b = {s.name: s.key for s in build_plan(load_recipe(write(tmp_path), {"grpo": {"max_steps": 4}}))}
    changed = {n for n in a if a[n] != b[n]}
    assert changed == {"grpo/skillfactory", "grpo/rl_only", "eval/skillfactory", "eval/rl_only", "report"}


def test_multiple_seeds_get_their_own_folders(tmp_path):
    stages = build_plan(load_recipe(write(tmp_path, seeds="[0, 1]")))
    names = [s.name for s in stages]
    assert "s0/sample" in names and "s1/grpo/rl_only" in names
    assert {s.out.parent.name for s in stages if s.name.startswith("s1/")} == {"s1"}
    # one study report over both seeds: every evaluation and training run of each seed
    study = stages[-1]
    assert study.name == "report" and study.out == tmp_path / "run" / "report"
    assert "s0/eval/skillfactory" in study.deps and "s1/grpo/rl_only" in study.deps and "s1/sft/skillfactory" in study.deps
    assert not any(d.endswith("/report") for d in study.deps)


def test_one_seed_has_no_study_report(tmp_path):
    assert [s.name for s in build_plan(load_recipe(write(tmp_path)))].count("report") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"arms": "[rl_only, magic]"}, "unknown arm"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_recipes_name_the_field(tmp_path, extra, message):
    path = tmp_path / "r.yaml"
    arms = extra.pop("arms", "[rl_only]")
    path.write_text(RECIPE.format(out=tmp_path, arms=arms) + "".join(f"{k}: {v}\n" for k, v in extra.items()))
    with pytest.raises(ConfigError, match=message):
        load_recipe(path)


def test_an_unknown_task_or_parameter_is_refused_when_the_recipe_loads(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE.format(out=tmp_path, arms="[rl_only]").replace("name: countdown", "name: countdwn"))
    with pytest.raises(ConfigError, match=r"field 'task': unknown task 'countdwn'; did you mean 'countdown'"):
        load_recipe(path)
    path.write_text(RECIPE.format(out=tmp_path, arms="[rl_only]").replace("num_args: 3", "num_arg: 3"))
    with pytest.raises(ConfigError, match=r"field 'task': task 'countdown': parameter 'num_arg'"):
        load_recipe(path)
    with pytest.raises(ConfigError, match=r"field 'replay.tasks.0': unknown task 'multiplcation'"):
        load_recipe(write(tmp_path, replay="{tasks: [{task: multiplcation}]}"))


@pytest.mark.parametrize(("section", "message"), [
    ("grpo: {max_stepz: 3}", r"stage grpo/skillfactory \(grpo section\): field 'max_stepz': Extra inputs"),
    ("sft: {epochz: 3}", r"stage sft/skillfactory \(sft section\): field 'epochz'.*valid fields here: .*epochs"),
    ("sample: {temperatur: 1.0}", r"stage sample \(sample section\): field 'temperatur'"),
    ("reflect: {per_sample: many}", r"stage reflect \(reflect section\): field 'per_sample'"),
    ("traces: {formats: ['*C_ful']}", r"stage traces/skillfactory \(traces section\).*did you mean '\*C_full'"),
    ("eval: {suite: [{task: countdwn, n: 3}]}", r"stage eval/base \(eval section\): .*unknown task 'countdwn'"),
    ("report: {colour: red}", r"stage report \(report section\): .*'colour'"),
])
def test_a_wrong_setting_in_any_section_stops_the_plan_before_anything_runs(tmp_path, section, message):
    """Found when the plan is made (also by --dry-run), not when its stage comes after hours of others."""
    key, _, value = section.partition(": ")
    with pytest.raises(ConfigError, match=message):
        build_plan(load_recipe(write(tmp_path, **{key: value})))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "recipes").glob("*.yaml")))
def test_every_shipped_recipe_plans(recipe):
    assert build_plan(load_recipe(REPO / "recipes" / recipe))


def test_recipe_needs_exactly_one_base_model(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: x\nbase_model: {}\ntask: {name: countdown}\n")
    with pytest.raises(ConfigError, match="base_model"):
        load_recipe(path)


REPLAY = ("{tasks: [{task: countdown, params: {num_args: 2}, n: 5}, {label: mult, task: multiplication, "
          "params: {digits: 2}, n: 4}], sample: {per_variant: 1}}")


def test_replay_feeds_every_sft_arm_with_its_own_format(tmp_path):
    stages = build_plan(load_recipe(write(tmp_path, arms="[skillfactory, sft_only, no_reflection]", replay=REPLAY,
                                          sample="{per_variant: 2, max_new_tokens: 64}")))
    by = {s.name: s for s in stages}
    assert by["sample/replay"].deps == ["base_model"]
    assert by["reflect/replay"].deps == ["sample/replay"]
    # replay settings: the recipe's sample section, replay.sample on top, tasks per entry, always the train split
    rs = by["sample/replay"].settings
    assert rs["per_variant"] == 1 and rs["max_new_tokens"] == 64 and rs["split"] == "train"
    assert [t["task"] for t in rs["tasks"]] == ["countdown", "multiplication"]
    assert by["traces/replay"].settings["formats"] == ["0C"] and by["traces/replay"].settings["max_responses"] == 1
    # the no_reflection arm's replay has no checks either: a reflection would bring back what the ablation removes
    assert by["traces/replay-no_reflection"].settings["formats"] == ["no_reflection"]
    # run_traces and run_sft take their inputs by position: these orders are what they rely on
    assert by["traces/replay"].deps == ["sample/replay", "reflect/replay"]
    assert by["traces/skillfactory"].deps == ["sample", "reflect"]
    assert by["sft/skillfactory"].deps == ["base_model", "traces/skillfactory", "traces/replay"]
    assert by["sft/no_reflection"].deps == ["base_model", "traces/no_reflection", "traces/replay-no_reflection"]


def test_replay_is_optional_and_changes_only_sft_and_downstream(tmp_path):
    a = {s.name: s.key for s in build_plan(load_recipe(write(tmp_path)))}
    b = {s.name: s.key for s in build_plan(load_recipe(write(tmp_path, replay=REPLAY)))}
    assert not any("replay" in n for n in a)
    changed = {n for n in a if a[n] != b[n]}
    assert changed == {"sft/skillfactory", "grpo/skillfactory", "eval/sft_only", "eval/skillfactory", "report"}


@pytest.mark.parametrize("replay, message", [
    ("{tasks: []}", "at least 1"),
    ("{tasks: [{task: countdown}, {task: countdown}]}", "share a folder name"),
    ("{tasks: [{task: countdown}], sample: {n: 3}}", "set per entry"),
])
def test_bad_replay_sections_are_named(tmp_path, replay, message):
    with pytest.raises(ConfigError, match=message):
        load_recipe(write(tmp_path, replay=replay))


def test_study_recipe_contract():
    """recipes/study.yaml: 3 seeds, the four arms and the no_reflection ablation, >= 100 test questions per cell
    (inline suite), replay in every SFT arm, one pooled report over the seeds."""
    from pathlib import Path

    recipe = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "study.yaml")
    assert len(recipe.seeds) == 3 and {"rl_only", "skillfactory", "sft_only", "no_reflection"} <= set(recipe.arms)
    assert isinstance(recipe.eval["suite"], list) and all(e["n"] >= 100 for e in recipe.eval["suite"])
    stages = build_plan(recipe)
    names = [s.name for s in stages]
    assert names[-1] == "report" and all(f"s{s}/traces/replay" in names for s in recipe.seeds)
    quick = load_recipe(Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml")
    # the quickstart is the study at one seed: the same SFT, replay and GRPO settings
    assert quick.sft == recipe.sft and quick.grpo == recipe.grpo and quick.replay == recipe.replay
