"""The embedded tiny base model: ``build_toy_model(preset, seed, out, force)`` (cached) and ``toy eval``.

Loaded lazily so that importing ``skillfactory.toy.model`` (the test fixture) stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_toy_model", "cached_path"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from skillfactory.toy import build

        return getattr(build, name)
    raise AttributeError(name)
