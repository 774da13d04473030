"""llenergymeasure: measure what LLM inference costs (energy, throughput, latency, FLOPs)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from loguru import logger

try:
    __version__ = version("llenergymeasure")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# A library stays silent unless its user asks; the `llem` CLI enables it.
logger.disable("llenergymeasure")
