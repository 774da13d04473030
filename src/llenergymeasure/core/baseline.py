"""Idle power before the model is loaded, per component, from the window's own instruments.

Each energy backend measures its components' idle power with the instrument it uses for
the window (`EnergyBackend.idle_power`): the energy counter's delta over the baseline
period divided by its duration where a counter exists, a power reading only where it does
not, the estimate's model for the estimate. The result records which (`source`).

Idle power is cached for `cache_ttl_s` (it changes slowly and costs seconds to measure),
under a key holding everything that defines it: host, method, devices, component and the
baseline's duration. The cache file is read and rewritten under an exclusive lock, so
concurrent workers keep each other's entries. A baseline during which other processes
kept more than `max_busy_share` of the host's cores busy is used for this run but not
cached (a warning says why); an entry that is malformed (not a number, negative power,
no time) is treated as absent, with a warning.
"""

from __future__ import annotations

import fcntl
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson
import psutil

from llenergymeasure.config.measurement import BaselineConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend, IdlePower
from llenergymeasure.core.host import CpuTimeFigures, CpuTimeWindow
from llenergymeasure.domain.metrics import BaselineMethod, MeasurementWarning
from llenergymeasure.errors import DeviceError, StorageError
from llenergymeasure.fileio import atomic_write_bytes
from llenergymeasure.log import logger

# /proc/stat counts in 10 ms ticks: a shorter baseline cannot tell how busy the host was.
MIN_BUSY_CHECK_S = 0.2


@dataclass(frozen=True)
class BaselinePower:
    """Idle power of one component (summed over its devices) and where it came from."""

    power_w: float | None
    std_w: float | None
    method: BaselineMethod
    source: str | None = None
    duration_s: float | None = None
    measured_at_unix_s: float | None = None

    def age_s(self, now_unix_s: float) -> float | None:
        """Seconds since it was measured."""
        return (
            None
            if self.measured_at_unix_s is None
            else max(0.0, now_unix_s - self.measured_at_unix_s)
        )


UNAVAILABLE = BaselinePower(power_w=None, std_w=None, method="unavailable")


@dataclass
class Baselines:
    """The idle baseline of every component the backends read, and what to warn about."""

    by_component: dict[str, BaselinePower] = field(default_factory=dict)
    warnings: list[MeasurementWarning] = field(default_factory=list)

    def of(self, component: str) -> BaselinePower:
        """The component's baseline; `unavailable` when it has none."""
        return self.by_component.get(component, UNAVAILABLE)


def measure_baselines(
    backends: Sequence[EnergyBackend], config: BaselineConfig, cache_path: Path | None = None
) -> Baselines:
    """Idle power of every component of `backends`, from the cache or measured now."""
    result = Baselines()
    if not config.enabled:
        return result
    for backend in backends:
        for component, baseline in _backend_baselines(backend, config, cache_path, result).items():
            result.by_component[component] = baseline
    return result


def _backend_baselines(
    backend: EnergyBackend, config: BaselineConfig, cache_path: Path | None, result: Baselines
) -> dict[str, BaselinePower]:
    cache = cache_path if config.cache_ttl_s > 0 else None
    keys = [_cache_key(key, config.duration_s) for key in backend.baseline_keys]
    if cache is not None:
        cached = _read_cache(cache, keys, config.cache_ttl_s)
        if cached is not None:
            return _by_component(cached, "cached")
    cpu_time = CpuTimeWindow()
    cpu_time.start()
    started_s = time.monotonic()
    try:
        parts = backend.idle_power(config.duration_s)
    except DeviceError as e:
        logger.warning(f"baseline: idle power unreadable, energy above idle will be null: {e}")
        return {}
    if not parts:
        return {}
    others_share = _others_busy_share(cpu_time.stop(), time.monotonic() - started_s)
    now = time.time()
    fresh = [
        (_cache_key(p.key, config.duration_s), p.component, _fresh(p, config.duration_s, now))
        for p in parts
    ]
    if others_share > config.max_busy_share:
        result.warnings.append(_busy_warning(others_share))
    elif cache is not None:
        _write_cache(cache, fresh)
    return _by_component([(component, b) for _, component, b in fresh], "fresh")


def _fresh(part: IdlePower, duration_s: float, now: float) -> BaselinePower:
    return BaselinePower(part.power_w, part.std_w, "fresh", part.source, duration_s, now)


def _by_component(
    parts: list[tuple[str, BaselinePower]], method: BaselineMethod
) -> dict[str, BaselinePower]:
    """Devices of one component add: means add, variances add (independent devices)."""
    grouped: dict[str, list[BaselinePower]] = {}
    for component, baseline in parts:
        grouped.setdefault(component, []).append(baseline)
    return {component: _combine(group, method) for component, group in grouped.items()}


def _combine(parts: list[BaselinePower], method: BaselineMethod) -> BaselinePower:
    stds = [p.std_w for p in parts]
    times = [p.measured_at_unix_s for p in parts if p.measured_at_unix_s is not None]
    sources = {p.source for p in parts}
    return BaselinePower(
        power_w=sum(p.power_w for p in parts if p.power_w is not None),
        std_w=math.sqrt(sum(s * s for s in stds)) if None not in stds else None,
        method=method,
        source=sources.pop() if len(sources) == 1 else None,
        duration_s=min((p.duration_s for p in parts if p.duration_s is not None), default=None),
        measured_at_unix_s=min(times) if times else None,
    )


def _cache_key(key: str, duration_s: float) -> str:
    return f"{key}|{duration_s:g}s"


def _others_busy_share(figures: CpuTimeFigures, elapsed_s: float) -> float:
    """Share of the host's cores that other processes kept busy over `elapsed_s`."""
    if elapsed_s < MIN_BUSY_CHECK_S:
        return 0.0
    capacity_s = elapsed_s * (psutil.cpu_count(logical=True) or 1)
    others_s = figures.host_busy_cpu_s - figures.process_cpu_s
    return min(1.0, max(0.0, others_s / capacity_s))


def _busy_warning(others_share: float) -> MeasurementWarning:
    return MeasurementWarning(
        code="baseline_host_busy",
        message=f"other processes kept {others_share:.0%} of the host's cores busy while the "
        "idle baseline was measured: it is used for this run but not cached, and the energy "
        "above idle is understated by their share",
        remediation="measure on a quiet host, or give the baseline a quiet moment",
    )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive `flock` on `<cache>.lock` while the cache is read and rewritten."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _load_cache(path: Path) -> dict:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        logger.warning(f"baseline: cache {path} unreadable ({exc}); measuring afresh")
        return {}
    return data if isinstance(data, dict) else {}


def _read_cache(
    path: Path, keys: list[str], ttl_s: float
) -> list[tuple[str, BaselinePower]] | None:
    """The cached baselines of every key, or None when any is absent, stale or malformed."""
    try:
        with _locked(path):
            cache = _load_cache(path)
    except OSError as exc:
        logger.warning(f"baseline: cache {path} unusable ({exc}); measuring afresh")
        return None
    found = []
    now = time.time()
    for key in keys:
        entry = cache.get(key)
        parsed = _parse_entry(entry) if entry is not None else None
        if entry is not None and parsed is None:
            logger.warning(f"baseline: malformed cache entry {key!r} ignored; measuring afresh")
        if parsed is None or not 0 <= now - parsed[1].measured_at_unix_s <= ttl_s:
            return None
        found.append(parsed)
    logger.info(f"baseline: cached idle power of {len(found)} unit(s)")
    return found


def _parse_entry(entry: object) -> tuple[str, BaselinePower] | None:
    """(component, baseline) of a cache entry; None unless every number is sound."""
    if not isinstance(entry, dict) or not isinstance(entry.get("component"), str):
        return None
    numbers = [entry.get(k) for k in ("power_w", "std_w", "measured_at_unix_s")]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
        return None
    power_w, std_w, measured_at = (float(v) for v in numbers)
    if not all(math.isfinite(v) for v in numbers) or power_w < 0 or std_w < 0:
        return None
    duration = entry.get("duration_s")
    source = entry.get("source")
    return entry["component"], BaselinePower(
        power_w=power_w,
        std_w=std_w,
        method="cached",
        source=source if isinstance(source, str) else None,
        duration_s=float(duration) if isinstance(duration, (int, float)) else None,
        measured_at_unix_s=measured_at,
    )


def _write_cache(path: Path, entries: list[tuple[str, str, BaselinePower]]) -> None:
    try:
        with _locked(path):
            cache = _load_cache(path)
            for key, component, baseline in entries:
                cache[key] = {**asdict(baseline), "component": component}
            atomic_write_bytes(path, orjson.dumps(cache, option=orjson.OPT_INDENT_2))
    except (StorageError, OSError) as exc:
        logger.warning(f"baseline: could not write the cache {path}: {exc}")
