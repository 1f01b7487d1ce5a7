"""Session cache of the family models: each family is built once, each fitted variant fitted once.

Tests elsewhere can get the same cache with a three-line fixture of their own::

    from families.family_models import FamilyModelCache

    @pytest.fixture(scope="session")
    def family_models(tmp_path_factory):
        return FamilyModelCache(tmp_path_factory.mktemp("families"))

(``tests/`` is on ``sys.path`` because ``tests/conftest.py`` sits in a folder without ``__init__.py``.)
"""

from __future__ import annotations

import pytest

from families.family_models import FamilyModelCache


@pytest.fixture(scope="session")
def family_models(tmp_path_factory) -> FamilyModelCache:
    """``family_models.base("qwen3")`` -> folder; ``family_models.fitted("qwen3", pairs)`` -> fitted folder.
    Treat the folders as read-only (copy one before training it)."""
    return FamilyModelCache(tmp_path_factory.mktemp("families"))
