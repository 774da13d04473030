"""Shared fixtures; the helpers they use live in `llem_testing`."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llem_testing import MultiProcessRun, run_llem, tiny_config_dict, write_yaml


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without vLLM installed, its tests are skipped: `make test` runs them in .venv-vllm."""
    if importlib.util.find_spec("vllm") is not None:
        return
    skip = pytest.mark.skip(reason="needs vLLM: `make test` runs these in .venv-vllm")
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def run_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The whole test run uses a model cache of its own, empty at the start.

    Builtin models are built into it once per run (at first use), so a run can neither be
    helped by nor damage the user's cache (~/.cache/llenergymeasure). Subprocesses (the
    CLI, accelerate's workers) inherit the variable.
    """
    cache = tmp_path_factory.mktemp("llem-model-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLEM_CACHE_DIR", str(cache))
        yield cache


@pytest.fixture
def llem_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point llem's cache at an empty temporary directory."""
    cache = tmp_path / "llem-cache"
    monkeypatch.setenv("LLEM_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def tiny_config_file(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "tiny.yaml", tiny_config_dict(tmp_path / "results"))


@pytest.fixture(scope="session")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> MultiProcessRun:
    """One real two-process CPU experiment (accelerate launch, gloo), shared by modules."""
    root = tmp_path_factory.mktemp("two-process")
    config_path = write_yaml(root / "tiny.yaml", tiny_config_dict(root / "results"))
    started = time.monotonic()
    proc = run_llem("run", config_path, "--processes", "2", cwd=root)
    wall_s = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    (experiment_dir,) = (root / "results" / "raw").iterdir()
    return MultiProcessRun(config_path, root / "results", experiment_dir, proc, wall_s)
