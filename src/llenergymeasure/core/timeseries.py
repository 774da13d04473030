"""The per-process time-series sidecar: a parquet file with a locked 8-column schema.

By default rows are 1 Hz buckets per (second, device): the mean of each field over the
samples in the bucket (nulls ignored) and the throttle bits OR-ed. `resample_hz=0`
keeps every sample. A run without samples still writes a file with the schema.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.fileio import atomic_target

TIMESERIES_SCHEMA = pa.schema(
    [
        ("timestamp_s", pa.float64()),
        ("gpu_index", pa.int32()),
        ("power_w", pa.float32()),
        ("temperature_c", pa.float32()),
        ("memory_used_mb", pa.float32()),
        ("memory_total_mb", pa.float32()),
        ("sm_utilisation_pct", pa.float32()),
        ("throttle_reasons", pa.int64()),
    ]
)
_MEAN_FIELDS = (
    "power_w",
    "temperature_c",
    "memory_used_mb",
    "memory_total_mb",
    "sm_utilisation_pct",
)


def write_timeseries_parquet(
    samples: list[PowerThermalSample],
    path: Path,
    *,
    start_s: float,
    resample_hz: float = 1.0,
) -> Path:
    """Write `samples` (monotonic times) as rows timed from `start_s`, atomically."""
    rows = (
        _raw_rows(samples, start_s)
        if resample_hz == 0
        else _bucket_rows(samples, start_s, resample_hz)
    )
    table = pa.Table.from_pylist(rows, schema=TIMESERIES_SCHEMA)
    with atomic_target(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def _raw_rows(samples: list[PowerThermalSample], start_s: float) -> list[dict]:
    return [
        {
            "timestamp_s": s.t_s - start_s,
            "gpu_index": s.device_index,
            "throttle_reasons": s.throttle_reasons,
            **{name: getattr(s, name) for name in _MEAN_FIELDS},
        }
        for s in samples
    ]


def _bucket_rows(
    samples: list[PowerThermalSample], start_s: float, resample_hz: float
) -> list[dict]:
    buckets: dict[tuple[int, int], list[PowerThermalSample]] = defaultdict(list)
    for s in samples:
        bucket = math.floor(max(0.0, s.t_s - start_s) * resample_hz)
        buckets[(bucket, s.device_index)].append(s)
    return [
        {
            "timestamp_s": bucket / resample_hz,
            "gpu_index": device,
            "throttle_reasons": _or_bits(group),
            **{name: _mean(getattr(s, name) for s in group) for name in _MEAN_FIELDS},
        }
        for (bucket, device), group in sorted(buckets.items())
    ]


def _mean(values) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def _or_bits(group: list[PowerThermalSample]) -> int | None:
    bits = [s.throttle_reasons for s in group if s.throttle_reasons is not None]
    if not bits:
        return None
    result = 0
    for b in bits:
        result |= b
    return result
