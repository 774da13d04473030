"""`llem --help` imports no heavy library: they are imported inside the command handlers.

Each check runs in a fresh interpreter, so what it sees is what a user's shell pays for.
The time itself is a bench (`bench/cli_startup.py`), not a test.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "transformers",
    "accelerate",
    "matplotlib",
    "pyarrow",
    "polars",
    "pandas",
    "numpy",
)


def imported_by(*args: str) -> set[str]:
    """Top-level packages a fresh `python -X importtime ARGS` imported."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert lines, "python -X importtime printed nothing"
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in lines}


def test_importing_the_cli_imports_no_heavy_library() -> None:
    """Not pydantic either: typer itself imports it once a command's options are parsed."""
    found = imported_by("-c", "import llenergymeasure.cli")
    assert {"typer", "llenergymeasure"} <= found  # the check sees real imports
    assert found.isdisjoint({*HEAVY, "pydantic"}), sorted(found & {*HEAVY, "pydantic"})


@pytest.mark.parametrize(
    "words",
    [(), ("run",), ("campaign",), ("export",), ("env",), ("results", "show"), ("plot", "power")],
    ids=lambda words: " ".join(words) or "llem",
)
def test_help_imports_no_heavy_library(words: tuple[str, ...]) -> None:
    found = imported_by("-m", "llenergymeasure", *words, "--help")
    assert found.isdisjoint(HEAVY), sorted(found & set(HEAVY))


def test_the_check_sees_a_heavy_import_where_one_happens() -> None:
    found = imported_by("-c", "import llenergymeasure.cli.summary, llenergymeasure.domain.metrics")
    assert "numpy" in found and "pydantic" in found
