"""llenergymeasure: measure what LLM inference costs (energy, throughput, latency, FLOPs)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llenergymeasure.api import (
        EnergyMonitor,
        Measurement,
        RankResults,
        aggregate,
        load_config,
        load_result,
        measure,
        run_experiment,
    )

__all__ = [
    "EnergyMonitor",
    "Measurement",
    "RankResults",
    "__version__",
    "aggregate",
    "load_config",
    "load_result",
    "measure",
    "run_experiment",
]
_PUBLIC_API = frozenset(__all__) - {"__version__"}

# A library stays silent unless its user asks (llenergymeasure/log.py); the CLI enables it.


def __getattr__(name: str) -> Any:
    """The public API and `__version__`, on first use so `import llenergymeasure` stays cheap."""
    if name == "__version__":
        return _version()
    if name in _PUBLIC_API:
        return getattr(import_module("llenergymeasure.api"), name)
    raise AttributeError(f"module 'llenergymeasure' has no attribute {name!r}")


def _version() -> str:
    """The installed distribution's version (importlib.metadata costs a noticeable import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("llenergymeasure")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0.0.0+unknown"
    globals()["__version__"] = found
    return found
