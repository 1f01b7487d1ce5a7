"""What every stage's output folder holds besides its data: the resolved config and a manifest.

The manifest records inputs, counts, package versions, seed, git hash and the stage's cache key, so a result
can be traced back to what made it and a pipeline can tell whether a finished stage is still valid.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from skillfactory.records import SCHEMA_VERSION, atomic_write_text

_PACKAGES = ("skillfactory", "torch", "transformers", "trl", "datasets", "tokenizers", "accelerate", "peft", "vllm")


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_hash() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def cache_key(obj: Any) -> str:
    """A stable short hash of any JSON-serialisable config (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_config(out_dir: str | Path, config: Any) -> None:
    """Save the resolved config as ``config.yaml`` (a pydantic model, dataclass or dict)."""
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    elif hasattr(config, "__dataclass_fields__"):
        import dataclasses

        config = dataclasses.asdict(config)
    atomic_write_text(Path(out_dir) / "config.yaml", yaml.safe_dump(config, sort_keys=False, allow_unicode=True))


def write_manifest(
    out_dir: str | Path,
    stage: str,
    *,
    config: Any = None,
    inputs: dict[str, str] | None = None,
    counts: dict[str, Any] | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``manifest.json`` (atomically) and ``config.yaml``; returns the manifest."""
    out_dir = Path(out_dir)
    if config is not None:
        write_config(out_dir, config)
        cfg = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    else:
        cfg = None
    manifest = {
        "stage": stage,
        "schema_version": SCHEMA_VERSION,
        "cache_key": cache_key({"stage": stage, "config": cfg, "inputs": inputs}),
        "inputs": inputs or {},
        "counts": counts or {},
        "seed": seed,
        "versions": package_versions(),
        "git": git_hash(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **(extra or {}),
    }
    atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def read_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    path = Path(out_dir) / "manifest.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())
