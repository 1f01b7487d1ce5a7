"""Adapters from the recipe to each stage's own function: what settings key a stage's cache, and how to call it.

Each ``*_settings`` returns the stage's settings (its recipe section plus what the pipeline decides: task,
seed, trace format, label); each ``run_*`` builds the stage's config from those settings plus its inputs and
output folder, calls the stage function (which resumes from whatever its folder holds), and returns the
stage's output path. Stage modules are imported inside ``run_*`` so planning and ``--dry-run`` stay fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skillfactory.pipeline.recipe import Recipe
from skillfactory.pipeline.runner import Stage


def _task(recipe: Recipe) -> dict[str, Any]:
    return {"task": recipe.task.name, "params": dict(recipe.task.params)}


def _backend(recipe: Recipe) -> dict[str, Any]:
    options = dict(recipe.backend.options)
    if recipe.chat_template_kwargs:  # only when set, so recipes without it keep their cache keys
        options["chat_template_kwargs"] = dict(recipe.chat_template_kwargs)
    return {"backend": recipe.backend.name, "backend_options": options}


def _chat(recipe: Recipe) -> dict[str, Any]:
    return {"chat_template_kwargs": dict(recipe.chat_template_kwargs)} if recipe.chat_template_kwargs else {}


def _no_executor(settings: dict[str, Any], section: str) -> None:
    """The executor is chosen once, in ``launcher.executor``: in a stage section it would enter the cache key."""
    if "executor" in settings:
        from skillfactory.errors import SkillFactoryError

        raise SkillFactoryError(f"recipe: {section}.executor: set it once as launcher.executor (e.g. launcher: "
                                "{executor: {name: ray, replicas: 2}}); where a stage runs does not change its result")


def _launcher(stage: Stage):
    """The recipe's launcher, carried in the stage's ``launch`` attribute (not in its settings: where a stage
    runs does not change its result, so it is not part of the cache key)."""
    from skillfactory.pipeline.launch import LauncherSpec

    return stage.launch if stage.launch is not None else LauncherSpec()


# ---- base model ------------------------------------------------------------------------------------------------
def base_model_settings(recipe: Recipe) -> dict[str, Any]:
    spec = recipe.base_model
    return {"path": str(Path(spec.path).resolve())} if spec.path else {"toy": spec.toy.model_dump()}


def run_base_model(stage: Stage, inputs: dict[str, Path]) -> Path:
    if "path" in stage.settings:
        path = Path(stage.settings["path"])
        if not (path / "config.json").exists():
            from skillfactory.errors import SkillFactoryError

            raise SkillFactoryError(f"base_model.path {path}: no config.json there; expected a Hugging Face model folder")
        return path
    from skillfactory.toy.build import build_toy_model, cached_path, is_built, prebuilt_path

    toy = stage.settings["toy"]
    if not is_built(cached_path(toy["preset"], toy["seed"])) and prebuilt_path(toy["preset"], toy["seed"]) is None:
        _build_toy_in_child(toy["preset"], int(toy["seed"]))  # a shipped model is only copied: no child needed
    return Path(build_toy_model(preset=toy["preset"], seed=toy["seed"]))


def _build_toy_in_child(preset: str, seed: int) -> None:
    """Build the toy model in a child process (``skillfactory toy build``), not in the pipeline's own.

    Why: a process that has pretrained a model computes later floats slightly differently (measured on the
    quickstart: the SFT grad norm differed in its 7th digit at step 3, and 285 steps later the SFT model scored
    0.550 instead of 0.500 on countdown-3), so a run that built the model and a run that found it cached gave
    different results. In a child the pipeline is always the same fresh process.
    """
    import subprocess
    import sys

    from skillfactory.errors import SkillFactoryError

    cmd = [sys.executable, "-m", "skillfactory", "toy", "build", "--preset", preset, "--seed", str(seed)]
    rc = subprocess.run(cmd, check=False).returncode
    if rc != 0:
        raise SkillFactoryError(f"base_model: building the toy model (preset {preset}, seed {seed}) failed with "
                                f"exit status {rc}; its own error is printed above (`skillfactory toy build "
                                f"--preset {preset} --seed {seed}` repeats it)")


# ---- sample / reflect --------------------------------------------------------------------------------------------
def sample_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    _no_executor(recipe.sample, "sample")
    return {**_backend(recipe), **recipe.sample, **_task(recipe), "seed": seed, "split": "train"}


def sample_config(stage: Stage, inputs: dict[str, Path]) -> Any:
    from skillfactory.sampling import SampleConfig

    return SampleConfig(**stage.settings, model=str(inputs["base_model"]), out=str(stage.out),
                        executor=_launcher(stage).executor)


def run_sample(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.pipeline.launch import run_stage

    run_stage("sample", sample_config(stage, inputs), stage.out, _launcher(stage))
    return stage.out / "samples.jsonl"


def reflect_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    _no_executor(recipe.reflect, "reflect")
    return {**_backend(recipe), **recipe.reflect, "seed": seed}


def reflect_config(stage: Stage, inputs: dict[str, Path]) -> Any:
    from skillfactory.reflection import ReflectConfig

    # no model in the recipe's reflect section: ReflectConfig takes the sampling run's (self-distillation)
    (samples,) = inputs.values()
    return ReflectConfig(**stage.settings, samples=str(samples), out=str(stage.out),
                         executor=_launcher(stage).executor)


def run_reflect(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.pipeline.launch import run_stage

    run_stage("reflect", reflect_config(stage, inputs), stage.out, _launcher(stage))
    return stage.out / "reflections.jsonl"


# ---- replay: the base model's own answers on other tasks -------------------------------------------------------
def replay_sample_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    assert recipe.replay is not None
    _no_executor(recipe.replay.sample, "replay.sample")
    own = {k: v for k, v in recipe.sample.items() if k not in ("task", "params", "n")}  # those come per entry
    base = {**_backend(recipe), **own, **recipe.replay.sample, "seed": seed, "split": "train"}
    return {**base, "tasks": [t.model_dump() for t in recipe.replay.tasks]}


def run_replay_sample(stage: Stage, inputs: dict[str, Path]) -> Path:
    """Sample every replay task into its own folder (each resumable), then join them into one samples.jsonl."""
    from skillfactory.pipeline.launch import run_stage
    from skillfactory.records import atomic_write_text

    parts = []
    for cfg in replay_sample_configs(stage, inputs):
        folder = Path(cfg.out)
        run_stage("sample", cfg, folder, _launcher(stage))
        parts.append(folder / "samples.jsonl")
    # the joined file, and the first part's config.yaml beside it: reflect reads the sampling model from it
    atomic_write_text(stage.out / "config.yaml", (parts[0].parent / "config.yaml").read_text())
    atomic_write_text(stage.out / "samples.jsonl", "".join(p.read_text() for p in parts))
    return stage.out / "samples.jsonl"


def replay_sample_configs(stage: Stage, inputs: dict[str, Path]) -> list[Any]:
    """One sampling config per replay task, each into its own folder of the stage's."""
    from skillfactory.pipeline.recipe import ReplayTask
    from skillfactory.sampling import SampleConfig

    settings = dict(stage.settings)
    tasks = [ReplayTask(**t) for t in settings.pop("tasks")]
    return [SampleConfig(**settings, task=t.task, params=dict(t.params), n=t.n, model=str(inputs["base_model"]),
                         out=str(stage.out / t.folder()), executor=_launcher(stage).executor) for t in tasks]


def replay_reflect_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    assert recipe.replay is not None
    _no_executor(recipe.replay.reflect, "replay.reflect")
    return {**_backend(recipe), **recipe.reflect, **recipe.replay.reflect, "seed": seed}


def replay_format(arm_format: str | None) -> str:
    """The replay trace format an SFT arm gets: its own fixed format when it has one (no_reflection: the
    answers without their checks), else the replay section's (``default``)."""
    return "no_reflection" if arm_format == "no_reflection" else "default"


def replay_traces_settings(recipe: Recipe, seed: int, fmt: str) -> dict[str, Any]:
    assert recipe.replay is not None
    settings = {**recipe.replay.traces, "seed": seed}
    if fmt != "default":
        settings["formats"] = [fmt]
    return settings


# ---- traces / sft / grpo ----------------------------------------------------------------------------------------
def traces_settings(recipe: Recipe, seed: int, fmt: str | None) -> dict[str, Any]:
    settings = {**recipe.traces, "seed": seed}
    if fmt is not None:
        settings["formats"] = [fmt]
    return settings


def traces_config(stage: Stage, inputs: dict[str, Path]) -> Any:
    from skillfactory.traces.build import TraceConfig

    samples, reflections = inputs.values()  # the plan's deps: [sample stage, reflect stage]
    return TraceConfig(**stage.settings, samples=str(samples), reflections=str(reflections), out=str(stage.out))


def run_traces(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.traces.build import build_traces
    from skillfactory.traces.outputs import read_source

    build_traces(traces_config(stage, inputs))
    return read_source(stage.out)  # traces.jsonl, or the dataset when a recipe writes no JSONL


def sft_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    return {**_chat(recipe), **recipe.sft, "seed": seed}


def sft_config(stage: Stage, inputs: dict[str, Path]) -> Any:
    from skillfactory.training.sft import SFTRunConfig

    model, traces, *replays = inputs.values()  # the plan's deps: [base model, the arm's traces, replay traces]
    replay = [str(p) for p in replays]
    return SFTRunConfig(**stage.settings, model=str(model), traces=str(traces), out=str(stage.out),
                        **({"replay": replay} if replay else {}))


def run_sft(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.pipeline.launch import run_stage

    run_stage("sft", sft_config(stage, inputs), stage.out, _launcher(stage))
    return stage.out / "final"


def grpo_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    return {**_chat(recipe), **recipe.grpo, **_task(recipe), "seed": seed}


def grpo_config(stage: Stage, inputs: dict[str, Path]) -> Any:
    from skillfactory.training.grpo import GRPORunConfig

    (model,) = inputs.values()
    return GRPORunConfig(**stage.settings, model=str(model), out=str(stage.out))


def run_grpo(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.pipeline.launch import run_stage

    run_stage("grpo", grpo_config(stage, inputs), stage.out, _launcher(stage))
    return stage.out / "final"


# ---- eval / report -----------------------------------------------------------------------------------------------
def eval_settings(recipe: Recipe, seed: int, label: str) -> dict[str, Any]:
    _no_executor(recipe.eval, "eval")
    return {**_backend(recipe), **recipe.eval, "seed": seed, "label": label}


def eval_config(stage: Stage, inputs: dict[str, Path]) -> Any:
    from skillfactory.evaluation.evaluate import EvalConfig

    (model,) = inputs.values()
    return EvalConfig(**stage.settings, model=str(model), out=str(stage.out), executor=_launcher(stage).executor)


def run_eval(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.pipeline.launch import run_stage

    run_stage("eval", eval_config(stage, inputs), stage.out, _launcher(stage))
    return stage.out


def report_settings(recipe: Recipe, seed: int) -> dict[str, Any]:
    return {**recipe.report, "title": f"{recipe.name} (seed {seed})", **_task(recipe)}


def run_report(stage: Stage, inputs: dict[str, Path]) -> Path:
    from skillfactory.report import write_report

    # eval stages output their folder; training stages output <folder>/final
    dirs = [p.parent if p.name == "final" else p for p in inputs.values()]
    return Path(write_report(dirs, stage.out, **stage.settings))


# ---- checking a plan before it runs ------------------------------------------------------------------------------
def check_stage(stage: Stage, source: str) -> None:
    """Build the config ``stage`` will run with (its inputs stand-ins) so that a wrong setting in any recipe
    section stops the run before the first stage, not after hours of the stages before it."""
    from pydantic import ValidationError

    from skillfactory.config import ConfigError, config_error

    build = _CONFIGS.get(stage.run)
    if build is None:
        return
    inputs = {d: Path(f"<output of {d}>") for d in stage.deps}
    section = stage.kind if "replay" not in stage.name else f"replay.{stage.kind}"
    try:
        configs = build(stage, inputs)
    except ValidationError as e:
        raise config_error(f"{source}: stage {stage.name} ({section} section)", _config_class(e), e) from None
    if stage.run is run_eval:
        from skillfactory.errors import SkillFactoryError
        from skillfactory.evaluation.suite import load_suite

        try:
            load_suite(configs.suite)  # an unknown task or field in the suite, named
        except SkillFactoryError as e:
            raise ConfigError(f"{source}: stage {stage.name} (eval section): {e}") from None
    if stage.run is run_report:
        import inspect

        from skillfactory.report import write_report

        try:
            inspect.signature(write_report).bind([], stage.out, **stage.settings)
        except TypeError as e:
            raise ConfigError(f"{source}: stage {stage.name} (report section): {e}") from None


def _config_class(err: Any) -> Any:
    """The config class a ValidationError is about (its title), for the list of valid fields."""
    from skillfactory.evaluation.evaluate import EvalConfig
    from skillfactory.reflection import ReflectConfig
    from skillfactory.sampling import SampleConfig
    from skillfactory.traces.build import TraceConfig
    from skillfactory.training.grpo import GRPORunConfig
    from skillfactory.training.sft import SFTRunConfig

    classes = (SampleConfig, ReflectConfig, TraceConfig, SFTRunConfig, GRPORunConfig, EvalConfig)
    return next((c for c in classes if c.__name__ == err.title), SampleConfig)


_CONFIGS = {run_sample: sample_config, run_replay_sample: replay_sample_configs, run_reflect: reflect_config,
            run_traces: traces_config, run_sft: sft_config, run_grpo: grpo_config, run_eval: eval_config,
            run_report: lambda stage, inputs: None}
