"""Turn a recipe into the ordered list of stages of an experiment (the stage graph, once per arm).

    base model -> sample -> reflect -> traces/<arm> -> sft/<arm> -> grpo/<arm> -> eval/<arm> -> report
                 \\-----------------------------------------------> grpo/rl_only -> eval/rl_only

Folders: ``<out>/base_model``, ``<out>/s<seed>/<stage>[-<arm>]``, ``<out>/s<seed>/report``, and with several
seeds ``<out>/report`` (all seeds pooled per claim; report/seeds.py).
"""

from __future__ import annotations

from pathlib import Path

from skillfactory.pipeline import stages as st
from skillfactory.pipeline.recipe import ARM_TRACE_FORMAT, Recipe
from skillfactory.pipeline.runner import Stage, assign_keys

#: SFT arms and the GRPO arms they feed.
SFT_ARMS = ("skillfactory", "sft_only", "no_reflection", "random")


def _trace_arm(arm: str) -> str:
    """The traces/SFT stages an arm needs (sft_only shares the skillfactory SFT model)."""
    return "skillfactory" if arm == "sft_only" else arm


def build_plan(recipe: Recipe) -> list[Stage]:
    root = recipe.out_dir
    stages: list[Stage] = []
    base = Stage("base_model", "base_model", root / "base_model", st.base_model_settings(recipe), st.run_base_model)
    stages.append(base)
    for seed in recipe.seeds:
        stages += _seed_stages(recipe, root / f"s{seed}", seed)
    if len(recipe.seeds) > 1:  # the study's report: every seed pooled per claim, each seed beside it
        deps = [d for s in stages if s.kind == "report" for d in s.deps]  # what each seed's report reads
        settings = {**st.report_settings(recipe, recipe.seeds[0]), "title": f"{recipe.name} ({len(recipe.seeds)} "
                    f"seeds pooled: {', '.join(map(str, recipe.seeds))})"}
        stages.append(Stage("report", "report", root / "report", settings, st.run_report, deps, launch=recipe.launcher))
    assign_keys(stages)
    for stage in stages:
        st.check_stage(stage, f"recipe {recipe.name}")
    return stages


def _seed_stages(recipe: Recipe, root: Path, seed: int) -> list[Stage]:
    pre = f"s{seed}/" if len(recipe.seeds) > 1 else ""
    out: list[Stage] = []

    def add(name: str, kind: str, folder: str, settings: dict, run, deps: list[str]) -> str:
        out.append(Stage(pre + name, kind, root / folder, settings, run, deps, launch=recipe.launcher))
        return pre + name

    sft_arms = sorted({_trace_arm(a) for a in recipe.arms if a in SFT_ARMS}, key=SFT_ARMS.index)
    models: dict[str, str] = {"base": "base_model"}  # arm label -> stage whose output is a model
    train_runs: list[str] = []
    if sft_arms:
        sample = add("sample", "sample", "sample", st.sample_settings(recipe, seed), st.run_sample, ["base_model"])
        reflect = add("reflect", "reflect", "reflect", st.reflect_settings(recipe, seed), st.run_reflect, [sample])
        replay: dict[str, str] = {}  # trace format -> replay traces stage
        if recipe.replay is not None:
            r_sample = add("sample/replay", "sample", "sample-replay", st.replay_sample_settings(recipe, seed),
                           st.run_replay_sample, ["base_model"])
            r_reflect = add("reflect/replay", "reflect", "reflect-replay", st.replay_reflect_settings(recipe, seed),
                            st.run_reflect, [r_sample])
            for fmt in sorted({st.replay_format(ARM_TRACE_FORMAT.get(a)) for a in sft_arms}):
                name = "replay" if fmt == "default" else f"replay-{fmt}"
                replay[fmt] = add(f"traces/{name}", "traces", f"traces-{name}",
                                  st.replay_traces_settings(recipe, seed, fmt), st.run_traces, [r_sample, r_reflect])
        for arm in sft_arms:
            fmt = ARM_TRACE_FORMAT.get(arm)
            traces = add(f"traces/{arm}", "traces", f"traces-{arm}", st.traces_settings(recipe, seed, fmt),
                         st.run_traces, [sample, reflect])
            extra = [replay[st.replay_format(fmt)]] if replay else []
            sft = add(f"sft/{arm}", "sft", f"sft-{arm}", st.sft_settings(recipe, seed), st.run_sft,
                      ["base_model", traces, *extra])
            train_runs.append(sft)
            if arm == "skillfactory" and "sft_only" in recipe.arms:
                models["sft_only"] = sft
            if arm in recipe.arms:
                grpo = add(f"grpo/{arm}", "grpo", f"grpo-{arm}", st.grpo_settings(recipe, seed), st.run_grpo, [sft])
                models[arm] = grpo
                train_runs.append(grpo)
    if "rl_only" in recipe.arms:
        grpo = add("grpo/rl_only", "grpo", "grpo-rl_only", st.grpo_settings(recipe, seed), st.run_grpo, ["base_model"])
        models["rl_only"] = grpo
        train_runs.append(grpo)
    evals = []
    for label, model_stage in models.items():
        evals.append(add(f"eval/{label}", "eval", f"eval-{label}", st.eval_settings(recipe, seed, label),
                         st.run_eval, [model_stage]))
    add("report", "report", "report", st.report_settings(recipe, seed), st.run_report, evals + train_runs)
    return out
