"""Idle power before the model is loaded, and the energy above it.

The baseline is measured through the same energy backend as the inference window, in
a few consecutive sub-windows, so its spread is known. It is cached per host, method
and device set for `cache_ttl_s`, because idle power changes slowly and measuring it
costs seconds at every run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from loguru import logger

from llenergymeasure.config.models import BaselineConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.domain.metrics import BaselineMethod, EnergyBreakdown, EnergyMeasurement
from llenergymeasure.fileio import atomic_write_bytes

BASELINE_SUBWINDOWS = 5


@dataclass(frozen=True)
class BaselinePower:
    """Idle power of the devices an energy backend reads, summed over them."""

    power_w: float | None
    std_w: float | None
    method: BaselineMethod
    duration_s: float = 0.0
    measured_at_unix_s: float | None = None


UNAVAILABLE = BaselinePower(power_w=None, std_w=None, method="unavailable")


def measure_baseline_power(
    backend: EnergyBackend | None,
    config: BaselineConfig,
    cache_path: Path | None = None,
) -> BaselinePower:
    """Idle power over `config.duration_s`, or a cached value younger than the TTL.

    Returns the `unavailable` baseline when disabled, without a backend, or when the
    backend cannot read a device (never 0 W in place of a missing reading).
    """
    if not config.enabled or backend is None:
        return UNAVAILABLE
    key = None
    if cache_path is not None and config.cache_ttl_s > 0:
        key = backend.cache_key
        cached = _read_cache(cache_path, key, config.cache_ttl_s)
        if cached is not None:
            return cached
    powers = []
    chunk_s = config.duration_s / BASELINE_SUBWINDOWS
    for _ in range(BASELINE_SUBWINDOWS):
        backend.start()
        time.sleep(chunk_s)
        total_j = backend.stop().total_j
        if total_j is None:
            return UNAVAILABLE
        powers.append(total_j / chunk_s)
    baseline = BaselinePower(
        power_w=statistics.fmean(powers),
        std_w=statistics.stdev(powers),
        method="fresh",
        duration_s=config.duration_s,
        measured_at_unix_s=time.time(),
    )
    if key is not None and cache_path is not None:
        _write_cache(cache_path, key, baseline)
    return baseline


def create_energy_breakdown(
    measurement: EnergyMeasurement | None,
    baseline: BaselinePower,
    inference_duration_s: float,
) -> EnergyBreakdown:
    """Raw joules of the window and the joules above idle over that same window."""
    raw_j = measurement.total_j if measurement is not None else None
    adjusted_j = None
    if raw_j is not None and baseline.power_w is not None:
        adjusted_j = max(0.0, raw_j - baseline.power_w * inference_duration_s)
    return EnergyBreakdown(
        raw_j=raw_j,
        adjusted_j=adjusted_j,
        baseline_power_w=baseline.power_w,
        baseline_std_w=baseline.std_w,
        baseline_method=baseline.method,
        inference_duration_s=inference_duration_s,
    )


def _read_cache(path: Path, key: str, ttl_s: float) -> BaselinePower | None:
    try:
        entry = orjson.loads(path.read_bytes()).get(key)
    except (OSError, orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(entry, dict) or entry.get("power_w") is None:
        return None
    age_s = time.time() - float(entry.get("measured_at_unix_s") or 0.0)
    if not 0 <= age_s <= ttl_s:
        return None
    logger.info(f"baseline: cached {entry['power_w']:.2f} W from {age_s:.0f} s ago")
    return BaselinePower(
        power_w=entry["power_w"],
        std_w=entry.get("std_w"),
        method="cached",
        duration_s=entry.get("duration_s", 0.0),
        measured_at_unix_s=entry.get("measured_at_unix_s"),
    )


def _write_cache(path: Path, key: str, baseline: BaselinePower) -> None:
    try:
        cache = orjson.loads(path.read_bytes()) if path.exists() else {}
    except (OSError, orjson.JSONDecodeError):
        cache = {}
    if not isinstance(cache, dict):
        cache = {}
    cache[key] = asdict(baseline)
    try:
        atomic_write_bytes(path, orjson.dumps(cache, option=orjson.OPT_INDENT_2))
    except OSError as exc:
        logger.warning(f"baseline: could not write the cache {path}: {exc}")
