from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from llenergymeasure.core.timeseries import TIMESERIES_SCHEMA, write_timeseries_parquet
from llenergymeasure.domain.samples import PowerThermalSample

EXPECTED = [
    ("timestamp_s", pa.float64()),
    ("gpu_index", pa.int32()),
    ("power_w", pa.float32()),
    ("temperature_c", pa.float32()),
    ("memory_used_mb", pa.float32()),
    ("memory_total_mb", pa.float32()),
    ("sm_utilisation_pct", pa.float32()),
    ("throttle_reasons", pa.int64()),
]


def samples_at_10hz(seconds: int, start: float = 100.0) -> list[PowerThermalSample]:
    out = []
    for k in range(seconds * 10):
        t = start + k / 10
        out.append(PowerThermalSample(t, 0, power_w=100.0 + k % 10, throttle_reasons=1 << (k % 3)))
        out.append(PowerThermalSample(t, 1, power_w=50.0, temperature_c=60.0))
    return out


def test_schema_is_exactly_the_locked_eight_columns(tmp_path: Path) -> None:
    path = write_timeseries_parquet(samples_at_10hz(2), tmp_path / "ts.parquet", start_s=100.0)
    schema = pq.read_schema(path)
    assert [(f.name, f.type) for f in schema] == EXPECTED
    assert TIMESERIES_SCHEMA.names == [n for n, _ in EXPECTED]


def test_one_hz_buckets_mean_and_or(tmp_path: Path) -> None:
    path = write_timeseries_parquet(samples_at_10hz(3), tmp_path / "ts.parquet", start_s=100.0)
    rows = pq.read_table(path).to_pylist()
    assert [(r["timestamp_s"], r["gpu_index"]) for r in rows] == [
        (0.0, 0),
        (0.0, 1),
        (1.0, 0),
        (1.0, 1),
        (2.0, 0),
        (2.0, 1),
    ]
    gpu0 = rows[0]
    assert gpu0["power_w"] == pytest.approx(104.5)  # mean of 100..109
    assert gpu0["throttle_reasons"] == 0b111
    assert gpu0["temperature_c"] is None
    assert rows[1]["throttle_reasons"] is None and rows[1]["temperature_c"] == 60.0
    count = duckdb.sql(f"select count(*) from '{path}' where gpu_index = 0").fetchall()[0][0]
    assert count == 3


def test_raw_samples_kept_with_resample_zero(tmp_path: Path) -> None:
    path = write_timeseries_parquet(
        samples_at_10hz(1), tmp_path / "ts.parquet", start_s=100.0, resample_hz=0
    )
    table = pq.read_table(path)
    assert table.num_rows == 20
    assert table.column("timestamp_s").to_pylist()[2] == pytest.approx(0.1)


def test_empty_run_still_has_the_schema(tmp_path: Path) -> None:
    path = write_timeseries_parquet([], tmp_path / "ts.parquet", start_s=0.0)
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert [(f.name, f.type) for f in table.schema] == EXPECTED


def test_buckets_at_two_hz_are_half_a_second_apart(tmp_path: Path) -> None:
    path = write_timeseries_parquet(
        samples_at_10hz(2), tmp_path / "ts.parquet", start_s=100.0, resample_hz=2.0
    )
    rows = pq.read_table(path).to_pylist()
    gpu0 = [r for r in rows if r["gpu_index"] == 0]
    assert [r["timestamp_s"] for r in gpu0] == [0.0, 0.5, 1.0, 1.5]
    # each half second holds five 10 Hz samples: 100..104 W, then 105..109 W
    assert [r["power_w"] for r in gpu0] == [102.0, 107.0, 102.0, 107.0]
