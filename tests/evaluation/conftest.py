"""Register the test tasks ``addsum`` and ``subdiff`` for every evaluation test (the registry maps a name to an import path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def addsum_task(monkeypatch):
    from eval_fakes import TASK_PATH

    from skillfactory.tasks import REGISTRY

    monkeypatch.setitem(REGISTRY, "addsum", TASK_PATH)
    monkeypatch.setitem(REGISTRY, "subdiff", "eval_fakes:SubTask")
