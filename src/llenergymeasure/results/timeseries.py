"""The time-series JSON export: `process_<i>_timeseries.json`, compact and self-describing.

One file per process: a summary header and one sample per tick under short keys
(`t, power_w, mem_mb, temp_c, sm_pct, throttle`). `llem export ID --timeseries-json`
builds it from the parquet sidecars (`read_sidecar_samples`); `export_timeseries`
accepts any objects with the sample attributes (`TimeseriesSample`), the sampler's
own samples included, so this layer never imports `core`.

The view is the process's accelerator: its GPU rows where there are any, otherwise
the host CPU row (memory is the process RSS, the other fields null). Where a process
owns several GPUs, a tick's power and memory are summed over them, its temperature is
the hottest, its `utilization.gpu` (`sm_pct`) the mean, and it is throttled when any
device was.
A value that was not measured is null, never 0.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from llenergymeasure.domain.experiment import SCHEMA_VERSION, ExperimentManifest, RawProcessResult
from llenergymeasure.domain.metrics import THROTTLE_MASK
from llenergymeasure.errors import ResultsError
from llenergymeasure.fileio import atomic_write_bytes

BUNDLE_NAME = "timeseries.json"
# Sidecar column -> sample attribute (the locked parquet schema, docs/formats.md).
SIDECAR_COLUMNS = {
    "timestamp_s": "t_s",
    "gpu_index": "device_index",
    "power_w": "power_w",
    "temperature_c": "temperature_c",
    "memory_used_mb": "memory_used_mb",
    "sm_utilisation_pct": "sm_utilisation_pct",
    "throttle_reasons": "throttle_reasons",
}
# Decimals kept in the JSON: 1 ms, 1 mW (NVML's resolution), 0.1 MB, 0.1 C, 0.1 %.
T_DIGITS, POWER_DIGITS, MEMORY_DIGITS, TEMPERATURE_DIGITS, SM_DIGITS = 3, 3, 1, 1, 1


class TimeseriesSample(Protocol):
    """One reading of one device; `domain.samples.PowerThermalSample` is one."""

    @property
    def t_s(self) -> float:
        """Time of the reading, in seconds (all samples of a tick share it)."""

    @property
    def device_index(self) -> int:
        """GPU index; negative for the host CPU row."""

    @property
    def power_w(self) -> float | None:
        """Device power."""

    @property
    def temperature_c(self) -> float | None:
        """Device temperature."""

    @property
    def memory_used_mb(self) -> float | None:
        """Device memory used (the process RSS on the CPU row)."""

    @property
    def sm_utilisation_pct(self) -> float | None:
        """NVML's `utilization.gpu`: % of the period any kernel ran (not SM occupancy)."""

    @property
    def throttle_reasons(self) -> int | None:
        """NVML clock-event reason bits."""


@dataclass(frozen=True, slots=True)
class SidecarSample:
    """A row of a parquet sidecar; `t_s` is seconds from the energy window's start."""

    t_s: float
    device_index: int
    power_w: float | None
    temperature_c: float | None
    memory_used_mb: float | None
    sm_utilisation_pct: float | None
    throttle_reasons: int | None


@dataclass(frozen=True, slots=True)
class _Tick:
    """The process's view of one tick, combined over its devices."""

    t_s: float
    power_w: float | None
    memory_mb: float | None
    temperature_c: float | None
    sm_pct: float | None
    throttled: bool | None


def timeseries_json_name(process_index: int) -> str:
    """`process_<i>_timeseries.json`."""
    return f"process_{process_index}_timeseries.json"


def export_timeseries(
    samples: Iterable[TimeseriesSample],
    experiment_id: str,
    process_index: int,
    output_dir: Path,
    sample_interval_ms: int | None = 100,
    *,
    start_s: float | None = None,
) -> Path:
    """Write `output_dir/process_<i>_timeseries.json` atomically (compact JSON).

    Args:
        samples: readings of this process's devices, in any order.
        experiment_id: written into the header.
        process_index: the process the samples belong to.
        output_dir: folder of the file (created if absent).
        sample_interval_ms: spacing of the samples; None where unknown.
        start_s: the time `t` counts from; None: the first sample's time.

    Returns:
        The path written.

    """
    devices, ticks = _process_view(samples)
    origin = start_s if start_s is not None else (ticks[0].t_s if ticks else 0.0)
    document = {
        "schema_version": SCHEMA_VERSION,
        "experiment_id": experiment_id,
        "process_index": process_index,
        "device_indices": devices,
        "sample_count": len(ticks),
        "sample_interval_ms": sample_interval_ms,
        "duration_sec": round(ticks[-1].t_s - ticks[0].t_s, T_DIGITS) if ticks else None,
        "summary": _summarise(ticks),
        "samples": [_compact(tick, origin) for tick in ticks],
    }
    path = Path(output_dir) / timeseries_json_name(process_index)
    atomic_write_bytes(path, orjson.dumps(document))
    return path


def load_timeseries(path: Path) -> dict[str, Any]:
    """Read a file written by `export_timeseries` (or `aggregate_timeseries`).

    Raises:
        FileNotFoundError: no file at `path`.
        ResultsError: not such a JSON file, or written by a newer llem.

    """
    try:
        data = orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not ("samples" in data or "processes" in data):
        raise ResultsError(f"{path}: not a time-series JSON export")
    version = data.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema_version {version!r} is not one this llem reads (<= {SCHEMA_VERSION})"
        )
    return data


def aggregate_timeseries(paths: Sequence[Path], output_path: Path, experiment_id: str) -> Path:
    """Bundle per-process JSON exports into one file, processes in index order.

    Timestamps are kept as each process wrote them (all count from the common energy
    window start when built from sidecars); nothing is resampled or averaged.
    """
    processes = sorted((load_timeseries(p) for p in paths), key=lambda d: d["process_index"])
    document = {
        "schema_version": SCHEMA_VERSION,
        "experiment_id": experiment_id,
        "process_count": len(processes),
        "processes": processes,
    }
    atomic_write_bytes(Path(output_path), orjson.dumps(document))
    return Path(output_path)


def read_sidecar_samples(path: Path) -> list[SidecarSample]:
    """The rows of a `process_<i>_timeseries.parquet` sidecar, read with pyarrow."""
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise ResultsError(f"{path}: time-series sidecar not found")
    table = pq.read_table(path, columns=list(SIDECAR_COLUMNS))
    return [
        SidecarSample(**{SIDECAR_COLUMNS[name]: value for name, value in row.items()})
        for row in table.to_pylist()
    ]


def sidecar_interval_ms(manifest: ExperimentManifest, result: RawProcessResult) -> int | None:
    """Spacing of a sidecar's rows: the bucket width, or the sample interval for raw rows."""
    series = manifest.config.get("measurement", {}).get("timeseries", {})
    resample_hz = series.get("resample_hz")
    if resample_hz is None:
        return None
    if resample_hz == 0:
        return result.sample_interval_ms
    return max(round(1000 / resample_hz), result.sample_interval_ms or 0)


def export_experiment_timeseries(
    experiment_dir: Path,
    manifest: ExperimentManifest,
    results: Sequence[RawProcessResult],
    output_dir: Path,
) -> list[Path]:
    """One JSON per process from its parquet sidecar, then the bundle `timeseries.json`.

    `t` counts from the energy window's start, as in the sidecars. Returns the paths
    written, the bundle last.
    """
    paths = [
        export_timeseries(
            read_sidecar_samples(Path(experiment_dir) / r.timeseries_path),
            r.experiment_id,
            r.process_index,
            output_dir,
            sidecar_interval_ms(manifest, r),
            start_s=0.0,
        )
        for r in results
        if r.timeseries_path is not None
    ]
    if not paths:
        raise ResultsError(
            f"{experiment_dir}: no time-series sidecar (measurement.timeseries.enabled was false)"
        )
    bundle = aggregate_timeseries(paths, Path(output_dir) / BUNDLE_NAME, manifest.experiment_id)
    return [*paths, bundle]


def _process_view(samples: Iterable[TimeseriesSample]) -> tuple[list[int], list[_Tick]]:
    """GPU samples where there are any, else the CPU row; combined per tick."""
    samples = list(samples)
    chosen = [s for s in samples if s.device_index >= 0] or samples
    ticks: dict[float, list[TimeseriesSample]] = defaultdict(list)
    for s in chosen:
        ticks[s.t_s].append(s)
    devices = sorted({s.device_index for s in chosen})
    return devices, [_combine(t_s, ticks[t_s]) for t_s in sorted(ticks)]


def _combine(t_s: float, group: list[TimeseriesSample]) -> _Tick:
    bits = [s.throttle_reasons for s in group if s.throttle_reasons is not None]
    temperatures = _present(s.temperature_c for s in group)
    return _Tick(
        t_s=t_s,
        power_w=_sum_all([s.power_w for s in group]),
        memory_mb=_sum_all([s.memory_used_mb for s in group]),
        temperature_c=max(temperatures, default=None),
        sm_pct=_mean(_present(s.sm_utilisation_pct for s in group)),
        throttled=any(b & THROTTLE_MASK for b in bits) if bits else None,
    )


def _summarise(ticks: list[_Tick]) -> dict[str, Any]:
    powers = _present(t.power_w for t in ticks)
    memories = _present(t.memory_mb for t in ticks)
    temperatures = _present(t.temperature_c for t in ticks)
    flags = [t.throttled for t in ticks if t.throttled is not None]
    return {
        "power_mean_w": _round(_mean(powers), POWER_DIGITS),
        "power_min_w": _round(min(powers, default=None), POWER_DIGITS),
        "power_max_w": _round(max(powers, default=None), POWER_DIGITS),
        "memory_mean_mb": _round(_mean(memories), MEMORY_DIGITS),
        "memory_max_mb": _round(max(memories, default=None), MEMORY_DIGITS),
        "temperature_mean_c": _round(_mean(temperatures), TEMPERATURE_DIGITS),
        "temperature_max_c": _round(max(temperatures, default=None), TEMPERATURE_DIGITS),
        "thermal_throttle_detected": any(flags) if flags else None,
        "thermal_throttle_sample_count": sum(flags) if flags else None,
    }


def _compact(tick: _Tick, origin_s: float) -> dict[str, Any]:
    return {
        "t": round(tick.t_s - origin_s, T_DIGITS),
        "power_w": _round(tick.power_w, POWER_DIGITS),
        "mem_mb": _round(tick.memory_mb, MEMORY_DIGITS),
        "temp_c": _round(tick.temperature_c, TEMPERATURE_DIGITS),
        "sm_pct": _round(tick.sm_pct, SM_DIGITS),
        "throttle": tick.throttled,
    }


def _present(values: Iterable[float | None]) -> list[float]:
    return [v for v in values if v is not None]


def _sum_all(values: list[float | None]) -> float | None:
    """Sum over devices; None when any device's value is missing (no partial totals)."""
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
