"""The layering of docs/design.md section 2, read from every module's imports (at any
depth: an import inside a function crosses a layer as much as one at the top)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "llenergymeasure"


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (inside functions too), absolute."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(under: str) -> list[Path]:
    return sorted((PACKAGE / under).rglob("*.py"))


def importers(prefix: str) -> set[str]:
    """The package's modules (relative paths) that import `prefix` or below it."""
    return {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if any(m == prefix or m.startswith(prefix + ".") for m in imports_of(path))
    }


FORBIDDEN = [
    # The hardware layer knows nothing of the measurement built on it.
    (
        "core/energy_backends",
        [
            "llenergymeasure.core.power_thermal",
            "llenergymeasure.core.window",
            "llenergymeasure.core.window_summary",
            "llenergymeasure.core.sampler_process",
            "llenergymeasure.core.lifecycle",
            "llenergymeasure.core.engines",
            "llenergymeasure.orchestration",
            "llenergymeasure.api",
            "llenergymeasure.results",
            "llenergymeasure.cli",
        ],
    ),
    # Results are read, aggregated and exported without torch's hardware.
    (
        "results",
        [
            "llenergymeasure.core",
            "llenergymeasure.orchestration",
            "llenergymeasure.api",
            "llenergymeasure.cli",
        ],
    ),
    ("core", ["llenergymeasure.orchestration", "llenergymeasure.api", "llenergymeasure.cli"]),
    (
        "domain",
        [
            "llenergymeasure.core",
            "llenergymeasure.orchestration",
            "llenergymeasure.results",
            "llenergymeasure.api",
            "llenergymeasure.cli",
        ],
    ),
    (
        "config",
        [
            "llenergymeasure.core",
            "llenergymeasure.orchestration",
            "llenergymeasure.results",
            "llenergymeasure.api",
            "llenergymeasure.cli",
        ],
    ),
]


@pytest.mark.parametrize(("layer", "forbidden"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_a_layer_imports_nothing_above_it(layer: str, forbidden: list[str]) -> None:
    assert modules(layer)
    crossing = {
        f"{path.relative_to(PACKAGE)} imports {module}"
        for path in modules(layer)
        for module in imports_of(path)
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    }
    assert not crossing, sorted(crossing)


def test_only_three_modules_import_pynvml() -> None:
    assert importers("pynvml") == {
        "core/energy_backends/nvml_library.py",
        "core/energy_backends/cuda_devices.py",
        "core/energy_backends/nvml_device.py",
    }


def test_only_the_vllm_engine_imports_vllm() -> None:
    assert importers("vllm") == {"core/engines/vllm.py"}
