"""A recipe: one YAML file that describes a whole experiment (base model, task, stage settings, arms, seeds).

Stage sections (``sample``, ``reflect``, ``traces``, ``sft``, ``grpo``, ``eval``) are passed through to the stage's
own config class (``SampleConfig``, ``ReflectConfig``, ...) which validates them, so a recipe accepts exactly the
options of the CLI commands. The pipeline fills in the fields it owns (model paths, inputs, out folders, seed).

Arms (the comparison the user wants):
- ``base``: the base model, evaluated as is (always evaluated; it is the reference for regression);
- ``rl_only``: GRPO from the base model;
- ``skillfactory``: silver traces (``traces.formats``) -> SFT -> GRPO;
- ``sft_only``: the SkillFactory SFT model without GRPO;
- ``no_reflection`` / ``random``: ablations - traces of that format -> SFT -> GRPO.
Every GRPO arm gets the same GRPO settings (``grpo`` section), so the RL budget is equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from skillfactory.config import deep_merge, load_yaml, validate
from skillfactory.pipeline.launch import LauncherSpec

ARMS = ("rl_only", "skillfactory", "sft_only", "no_reflection", "random")
#: The trace format each SFT arm trains on (``skillfactory`` uses the recipe's ``traces.formats``).
ARM_TRACE_FORMAT = {"no_reflection": "no_reflection", "random": "random"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ToyModelSpec(_Strict):
    preset: Literal["micro", "tiny"] = "tiny"
    seed: int = 0


class BaseModelSpec(_Strict):
    """Either a local model path (a real model, e.g. Qwen2.5-1.5B-Instruct) or the embedded toy model."""

    path: str | None = None
    toy: ToyModelSpec | None = None

    @model_validator(mode="after")
    def _one_of(self) -> BaseModelSpec:
        if (self.path is None) == (self.toy is None):
            raise ValueError("give exactly one of 'path' (a local model folder) or 'toy' ({preset: tiny})")
        return self


def _check_task(name: str, params: dict[str, Any]) -> None:
    """A recipe's task must exist and take its params: found when the recipe is loaded, not stages later."""
    from skillfactory.tasks import task_problem

    problem = task_problem(name, params)
    if problem is not None:
        raise ValueError(problem)


class TaskSpec(_Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exists(self) -> TaskSpec:
        _check_task(self.name, self.params)
        return self


class ReplayTask(_Strict):
    """One task (and size) whose questions the base model answers for replay."""

    label: str | None = None  # folder name; default: task name + params
    task: str
    params: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(60, ge=1)  # training-split questions

    @model_validator(mode="after")
    def _exists(self) -> ReplayTask:
        _check_task(self.task, self.params)
        return self

    def folder(self) -> str:
        if self.label:
            return self.label
        tag = "-".join(f"{k}{v}" for k, v in sorted(self.params.items()))
        return f"{self.task}-{tag}" if tag else self.task


class ReplaySpec(_Strict):
    """Replay: the base model's own answers on other tasks and sizes, mixed into every SFT arm's data.

    Why: SFT on one task's traces (e.g. countdown with 3 numbers) can overwrite what the model could do
    elsewhere - measured on the toy model, it then answered 2-number countdown and multiplication as 3-number
    countdown, scoring 0. Replay samples the base model on ``tasks`` (training split), keeps its reflections
    whose verdict is right (as for traces), and builds one-attempt traces (``traces.formats``, default ``0C``:
    one correct attempt + its check + the answer), so the SFT data also holds what the model already did right,
    in the trace structure. The no_reflection arm gets the same replay without the reflection.
    """

    tasks: list[ReplayTask] = Field(min_length=1)
    sample: dict[str, Any] = Field(default_factory=dict)  # on top of the recipe's sample section (not task/n)
    reflect: dict[str, Any] = Field(default_factory=dict)  # on top of the recipe's reflect section
    traces: dict[str, Any] = Field(default_factory=lambda: {"formats": ["0C"], "max_responses": 1})

    @model_validator(mode="after")
    def _distinct(self) -> ReplaySpec:
        names = [t.folder() for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"replay.tasks: two entries share a folder name ({names}); give them labels")
        bad = sorted({"task", "params", "n", "split"} & set(self.sample))
        if bad:
            raise ValueError(f"replay.sample: {', '.join(bad)} are set per entry in replay.tasks")
        return self


class BackendSpec(_Strict):
    name: str = "hf"
    options: dict[str, Any] = Field(default_factory=dict)


class Recipe(_Strict):
    name: str
    out: str = "runs/{name}"  # output root; {name} is replaced by the recipe name
    description: str = ""
    base_model: BaseModelSpec
    backend: BackendSpec = Field(default_factory=BackendSpec)
    #: chat-template arguments for every stage that renders a chat (sample, reflect, sft, grpo, eval), set once:
    #: e.g. {enable_thinking: false} for Qwen3 hybrid models. Empty: the template's defaults.
    chat_template_kwargs: dict[str, Any] = Field(default_factory=dict)
    launcher: LauncherSpec = Field(default_factory=LauncherSpec)  # training processes, child processes
    task: TaskSpec
    seeds: list[int] = Field(default_factory=lambda: [0])
    arms: list[str] = Field(default_factory=lambda: ["rl_only", "skillfactory", "sft_only"])
    sample: dict[str, Any] = Field(default_factory=dict)
    reflect: dict[str, Any] = Field(default_factory=dict)
    traces: dict[str, Any] = Field(default_factory=dict)
    sft: dict[str, Any] = Field(default_factory=dict)
    grpo: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)
    report: dict[str, Any] = Field(default_factory=dict)
    replay: ReplaySpec | None = None  # the base model's own answers on other tasks, beside the traces in SFT

    @model_validator(mode="after")
    def _check(self) -> Recipe:
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.out.format(name=self.name))


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Load and validate a recipe YAML, applying ``key.sub=value`` overrides (see ``config.parse_overrides``)."""
    data = deep_merge(load_yaml(path), overrides or {})
    data.setdefault("name", Path(path).stem)
    return validate(Recipe, data, str(path))
