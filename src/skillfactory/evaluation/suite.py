"""Evaluation suites: which tasks, at which difficulties, how many questions and samples.

A suite is YAML: either a list of entries or a mapping ``{name: ..., entries: [...]}``. An entry::

    - task: countdown          # registry name or dotted path of a Task
      params: {num_args: 4}    # the task's parameters (validated by the task itself)
      n: 100                   # questions (drawn from split="test": disjoint from training by construction)
      samples: 4               # samples per question (accuracy = mean over them; pass@k for k <= samples)
      max_new_tokens: 1024
      label: countdown-4       # optional; default "task[params]"

The packaged suites live in ``skillfactory/suites/*.yaml`` and are named without the extension (``default``,
``quick``). Everything is validated at load: an unknown task, an unknown parameter or field is a one-line
error naming the suite, the entry and the valid choices, before any model is loaded.

Eval's ``max_new_tokens`` should be >= the training cap (GRPO's ``max_completion_length``; published 4096):
a SkillFactory answer holds several attempts and ends with the final ``<answer>``, so one cut shorter than
training allowed scores 0 for lack of an answer, not for a wrong one. The ``default`` suite uses 4096, the
``quick`` one 256 (>= the toy preset's 128); ``cap_warning`` flags a suite that is shorter than the GRPO run
that trained the model.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from skillfactory.config import config_error
from skillfactory.errors import SkillFactoryError
from skillfactory.tasks import task_problem


class SuiteError(SkillFactoryError, ValueError):
    """A suite that cannot be used; the message names the suite, the entry and the fix."""


class SuiteEntry(BaseModel):
    """One (task, difficulty) cell of a suite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    params: dict[str, Any] = Field(default_factory=dict)
    n: int = Field(100, ge=1)  # questions
    samples: int = Field(4, ge=1)  # samples per question
    max_new_tokens: int = Field(1024, ge=1)
    temperature: float | None = Field(None, ge=0)  # None = the eval config's temperature
    label: str | None = None  # unique name in results; default "task[params]"
    group: str | None = None  # what the difficulty axis groups by; default the task (reasoning_gym: its dataset)
    difficulty: str | None = None  # x-axis value; default the params that vary within the group


class ResolvedEntry(BaseModel):
    """A suite entry after validation, with its label, group and difficulty filled in."""

    model_config = ConfigDict(frozen=True)

    task: str
    params: dict[str, Any]
    n: int
    samples: int
    max_new_tokens: int
    temperature: float | None
    label: str
    group: str
    difficulty: str
    difficulty_value: float | str


class Suite(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    entries: list[ResolvedEntry]

    def entry(self, label: str) -> ResolvedEntry:
        for e in self.entries:
            if e.label == label:
                return e
        raise SuiteError(f"suite {self.name!r}: no entry {label!r} (entries: {', '.join(x.label for x in self.entries)})")


def packaged_suites() -> list[str]:
    folder = resources.files("skillfactory") / "suites"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read(source: str | Path) -> tuple[str, Any]:
    path = Path(source)
    if not path.exists() and str(source) in packaged_suites():
        text = (resources.files("skillfactory") / "suites" / f"{source}.yaml").read_text()
        return str(source), yaml.safe_load(text)
    if not path.exists():
        raise SuiteError(f"suite {str(source)!r}: no such file and not a packaged suite "
                         f"(packaged: {', '.join(packaged_suites())})")
    try:
        return str(path), yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SuiteError(f"{path}: not valid YAML ({getattr(e, 'problem', e)})") from None


def _default_label(task: str, params: dict[str, Any]) -> str:
    if not params:
        return task
    return f"{task}[{','.join(f'{k}={_short(v)}' for k, v in sorted(params.items()))}]"


def _short(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ",".join(f"{k}={_short(x)}" for k, x in sorted(v.items())) + "}"
    return str(v)


def _group_of(task: str, params: dict[str, Any]) -> str:
    if task == "reasoning_gym" and isinstance(params.get("dataset"), str):
        return f"rg:{params['dataset']}"
    return task


def load_suite(source: str | Path | list | dict, *, name: str | None = None) -> Suite:
    """Load and validate a suite from a YAML path, a packaged suite name, or an inline list/mapping."""
    if isinstance(source, (list, dict)):
        where, data = name or "inline suite", source
    else:
        where, data = _read(source)
    if isinstance(data, dict):
        unknown = set(data) - {"name", "entries"}
        if unknown or "entries" not in data:
            raise SuiteError(f"{where}: a suite mapping needs 'entries' (and optionally 'name'); got keys {sorted(data)}")
        where = str(data.get("name") or where)
        data = data["entries"]
    if not isinstance(data, list) or not data:
        raise SuiteError(f"{where}: expected a non-empty list of entries (task, params, n, samples, max_new_tokens)")
    raw: list[SuiteEntry] = []
    for i, item in enumerate(data, start=1):
        raw.append(_validate_entry(where, i, item))
    return Suite(name=Path(where).stem if where.endswith((".yaml", ".yml")) else where, entries=_resolve(where, raw))


def _validate_entry(where: str, i: int, item: Any) -> SuiteEntry:
    if not isinstance(item, dict):
        raise SuiteError(f"{where}: entry {i}: expected a mapping with 'task', got {type(item).__name__}")
    try:
        entry = SuiteEntry.model_validate(item)
    except ValidationError as e:  # worded as every config error: the field, the message, the valid fields
        raise SuiteError(str(config_error(f"{where}: entry {i}", SuiteEntry, e))) from None
    problem = task_problem(entry.task, entry.params)
    if problem is not None:
        raise SuiteError(f"{where}: entry {i}: {problem}")
    return entry


def _resolve(where: str, raw: list[SuiteEntry]) -> list[ResolvedEntry]:
    groups: dict[str, list[SuiteEntry]] = {}
    for e in raw:
        groups.setdefault(e.group or _group_of(e.task, e.params), []).append(e)
    out, seen = [], set()
    for e in raw:
        group = e.group or _group_of(e.task, e.params)
        label = e.label or _default_label(e.task, e.params)
        if label in seen:
            raise SuiteError(f"{where}: two entries share the label {label!r}; give one a distinct 'label'")
        seen.add(label)
        peers = groups[group]
        varying = sorted(k for k in {k for p in peers for k in p.params}
                         if len({repr(p.params.get(k)) for p in peers}) > 1)
        if e.difficulty is not None:
            diff, value = e.difficulty, _as_number(e.difficulty)
        elif len(varying) == 1:
            v = e.params.get(varying[0])
            diff, value = f"{varying[0]}={_short(v)}", _as_number(v)
        elif varying:
            diff = ",".join(f"{k}={_short(e.params.get(k))}" for k in varying)
            value = diff
        else:
            diff, value = "default", "default"
        out.append(ResolvedEntry(task=e.task, params=dict(e.params), n=e.n, samples=e.samples,
                                 max_new_tokens=e.max_new_tokens, temperature=e.temperature, label=label,
                                 group=group, difficulty=diff, difficulty_value=value))
    return out


def training_cap(model: str | Path) -> int | None:
    """GRPO's ``max_completion_length`` for a model our GRPO stage trained (``OUT`` or ``OUT/final``), else None.

    Read from the run folder's ``manifest.json`` (stage ``grpo``) and resolved ``config.yaml``; any other
    model (a base model, an SFT model, a served name) has no known cap.
    """
    path = Path(model)
    if not path.is_dir():
        return None
    for folder in (path, path.parent):
        manifest, config = folder / "manifest.json", folder / "config.yaml"
        if manifest.is_file() and config.is_file():
            try:
                stage = json.loads(manifest.read_text()).get("stage")
                cap = (yaml.safe_load(config.read_text()) or {}).get("max_completion_length")
            except (OSError, ValueError, AttributeError, yaml.YAMLError):
                return None
            return cap if stage == "grpo" and isinstance(cap, int) else None
    return None


def cap_warning(suite: Suite, model: str | Path) -> str | None:
    """One line naming the entries whose ``max_new_tokens`` is below the cap GRPO trained ``model`` with."""
    cap = training_cap(model)
    short = [e.label for e in suite.entries if cap is not None and e.max_new_tokens < cap]
    if not short:
        return None
    return (f"suite {suite.name!r}: {len(short)} entries cap answers below the {cap} tokens GRPO trained {model} "
            f"with ({', '.join(short)}); answers cut there lose their final <answer>: raise max_new_tokens to >= {cap}")


def _as_number(v: Any) -> float | str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(str(v))
    except ValueError:
        return str(v)


__all__ = ["ResolvedEntry", "Suite", "SuiteEntry", "SuiteError", "cap_warning", "load_suite", "packaged_suites",
           "training_cap"]
