"""Typed config loading: YAML -> pydantic model, with CLI ``key=value`` overrides and errors that name the
file, the field and what was expected."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from skillfactory.errors import SkillFactoryError

M = TypeVar("M", bound=BaseModel)


class ConfigError(SkillFactoryError, ValueError):
    """A config file or override that does not fit its schema."""


def parse_value(text: str) -> Any:
    """Parse a CLI value with YAML rules (``3`` -> int, ``0.5`` -> float, ``[1,2]`` -> list, else str)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"{pair!r}: expected NAME=VALUE, e.g. num_args=3")
        key, _, value = pair.partition("=")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = parse_value(value)
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


#: The source named in errors of a command's settings given without --config (flags and --set only).
COMMAND_LINE = "command line"


def validate(model: type[M], data: dict[str, Any], source: str = "config") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise config_error(source, model, e) from None


def config_error(source: str, model: type[BaseModel], err: ValidationError) -> ConfigError:
    """A one-line :class:`ConfigError` for ``err``: its first field, the message, and for an unknown field the
    valid ones at that level of ``model``."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "<root>"
    allowed = ""
    if first["type"] == "extra_forbidden":
        allowed = f" (valid fields here: {', '.join(_fields_at(model, first['loc'][:-1]))})"
    msg = first["msg"].removeprefix("Value error, ")  # a validator's own message needs no pydantic prefix
    if first["type"] == "missing" and source == COMMAND_LINE and len(first["loc"]) == 1:
        msg = f"required: give --{field.replace('_', '-')} (or {field}: in --config FILE)"
    return ConfigError(f"{source}: field '{field}': {msg}{allowed}")


def _fields_at(model: type[BaseModel], loc: tuple) -> list[str]:
    cur: Any = model
    for part in loc:
        field = getattr(cur, "model_fields", {}).get(part)
        if field is None:
            break
        cur = field.annotation
    return list(getattr(cur, "model_fields", {}))


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_config(model: type[M], path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> M:
    """Load a YAML file (optional) into ``model`` after applying overrides."""
    data = load_yaml(path) if path else {}
    data = deep_merge(data, overrides or {})
    return validate(model, data, str(path) if path else COMMAND_LINE)
