from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def llem_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point llem's cache at an empty temporary directory."""
    cache = tmp_path / "llem-cache"
    monkeypatch.setenv("LLEM_CACHE_DIR", str(cache))
    return cache
