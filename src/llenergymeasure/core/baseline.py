"""Idle power before the model is loaded, and the energy above it.

The baseline is measured through the same energy backend as the inference window: the
backend's `idle_power` (sub-windows of its counter, or sampled power per GPU). It is
cached per key (one per GPU UUID, or one per host and method for machine-level sources)
for `cache_ttl_s`, because idle power changes slowly and measuring it costs seconds at
every run.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from loguru import logger

from llenergymeasure.config.models import BaselineConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.domain.metrics import BaselineMethod, EnergyBreakdown, EnergyMeasurement
from llenergymeasure.errors import DeviceError, StorageError
from llenergymeasure.fileio import atomic_write_bytes


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
    """Idle power over `config.duration_s`, or cached values younger than the TTL.

    With several devices (one key each), the baseline is the sum of their means and the
    root sum of squares of their standard deviations; it is `cached` only when every key
    is. Returns the `unavailable` baseline when disabled, without a backend, or when the
    backend cannot read a device (never 0 W in place of a missing reading).
    """
    if not config.enabled or backend is None:
        return UNAVAILABLE
    cache = cache_path if config.cache_ttl_s > 0 else None
    if cache is not None:
        cached = [_read_cache(cache, key, config.cache_ttl_s) for key in backend.baseline_keys]
        if cached and all(c is not None for c in cached):
            return _combine([c for c in cached if c is not None], "cached")
    try:
        parts = backend.idle_power(config.duration_s)
    except DeviceError as e:
        logger.warning(f"baseline: idle power unreadable, adjusted energy will be null: {e}")
        return UNAVAILABLE
    if not parts:
        return UNAVAILABLE
    now = time.time()
    fresh = {
        p.key: BaselinePower(p.power_w, p.std_w, "fresh", config.duration_s, now) for p in parts
    }
    if cache is not None:
        for key, baseline in fresh.items():
            _write_cache(cache, key, baseline)
    return _combine(list(fresh.values()), "fresh")


def _combine(parts: list[BaselinePower], method: BaselineMethod) -> BaselinePower:
    """Sum of independent devices: means add, variances add."""
    stds = [p.std_w for p in parts]
    times = [p.measured_at_unix_s for p in parts if p.measured_at_unix_s is not None]
    return BaselinePower(
        power_w=sum(p.power_w for p in parts if p.power_w is not None),
        std_w=math.sqrt(sum(s * s for s in stds)) if all(s is not None for s in stds) else None,
        method=method,
        duration_s=min(p.duration_s for p in parts),
        measured_at_unix_s=min(times) if times else None,
    )


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
    except StorageError as exc:
        logger.warning(f"baseline: could not write the cache {path}: {exc}")
