from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.experiment import ExperimentManifest, RawProcessResult
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.errors import ResultsError
from llenergymeasure.results.timeseries import (
    aggregate_timeseries,
    export_timeseries,
    load_timeseries,
    read_sidecar_samples,
    sidecar_interval_ms,
)

SW_THERMAL, GPU_IDLE = 0x20, 0x1
SAMPLE_KEYS = {"t", "power_w", "mem_mb", "temp_c", "sm_pct", "throttle"}
SUMMARY_KEYS = {
    "power_mean_w",
    "power_min_w",
    "power_max_w",
    "memory_mean_mb",
    "memory_max_mb",
    "temperature_mean_c",
    "temperature_max_c",
    "thermal_throttle_detected",
    "thermal_throttle_sample_count",
}


def gpu_samples() -> list[PowerThermalSample]:
    """Five ticks at 100 ms on GPU 0; the last two thermally throttled."""
    power = [100.0, 150.0, 200.0, 250.0, 300.0]
    memory = [1000.0, 1100.0, 1200.0, 1300.0, 1400.0]
    temperature = [60.0, 61.0, 62.0, 63.0, 64.0]
    bits = [0, GPU_IDLE, 0, SW_THERMAL, SW_THERMAL]
    return [
        PowerThermalSample(
            t_s=500.0 + k / 10,
            device_index=0,
            power_w=power[k],
            temperature_c=temperature[k],
            memory_used_mb=memory[k],
            memory_total_mb=81559.0,
            sm_utilisation_pct=90.0 + k,
            throttle_reasons=bits[k],
        )
        for k in range(5)
    ]


def cpu_samples(ticks: int = 3) -> list[PowerThermalSample]:
    return [
        PowerThermalSample(500.0 + k / 10, -1, memory_used_mb=800.0 + k, cpu_util_pct=50.0)
        for k in range(ticks)
    ]


def test_known_input_gives_the_right_summary(tmp_path: Path) -> None:
    path = export_timeseries(gpu_samples(), "exp_a", 0, tmp_path, sample_interval_ms=100)
    assert path == tmp_path / "process_0_timeseries.json"
    data = load_timeseries(path)
    assert data["experiment_id"] == "exp_a" and data["process_index"] == 0
    assert data["sample_count"] == len(data["samples"]) == 5
    assert data["sample_interval_ms"] == 100
    assert data["duration_sec"] == pytest.approx(0.4)
    assert data["summary"] == {
        "power_mean_w": 200.0,
        "power_min_w": 100.0,
        "power_max_w": 300.0,
        "memory_mean_mb": 1200.0,
        "memory_max_mb": 1400.0,
        "temperature_mean_c": 62.0,
        "temperature_max_c": 64.0,
        "thermal_throttle_detected": True,
        "thermal_throttle_sample_count": 2,  # the idle bit is not throttling
    }


def test_samples_use_compact_keys_and_relative_time(tmp_path: Path) -> None:
    data = load_timeseries(export_timeseries(gpu_samples(), "exp_a", 0, tmp_path))
    assert all(set(s) == SAMPLE_KEYS for s in data["samples"])
    assert [s["t"] for s in data["samples"]] == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert data["samples"][1] == {
        "t": 0.1,
        "power_w": 150.0,
        "mem_mb": 1100.0,
        "temp_c": 61.0,
        "sm_pct": 91.0,
        "throttle": False,
    }
    assert data["device_indices"] == [0]


def test_cpu_only_run_has_null_power_never_zero(tmp_path: Path) -> None:
    data = load_timeseries(export_timeseries(cpu_samples(), "exp_cpu", 1, tmp_path))
    summary = data["summary"]
    assert summary["power_mean_w"] is None and summary["power_max_w"] is None
    assert summary["temperature_max_c"] is None
    assert summary["thermal_throttle_detected"] is None
    assert summary["thermal_throttle_sample_count"] is None
    assert summary["memory_max_mb"] == 802.0 and summary["memory_mean_mb"] == 801.0
    assert data["device_indices"] == [-1]
    assert {s["power_w"] for s in data["samples"]} == {None}


def test_gpu_rows_are_preferred_over_the_cpu_row(tmp_path: Path) -> None:
    data = load_timeseries(
        export_timeseries([*cpu_samples(5), *gpu_samples()], "exp_a", 0, tmp_path)
    )
    assert data["device_indices"] == [0] and data["sample_count"] == 5
    assert data["summary"]["memory_max_mb"] == 1400.0


def test_two_gpus_of_one_process_are_combined_per_tick(tmp_path: Path) -> None:
    second = [
        PowerThermalSample(s.t_s, 1, power_w=50.0, temperature_c=70.0, memory_used_mb=10.0)
        for s in gpu_samples()
    ]
    data = load_timeseries(export_timeseries([*gpu_samples(), *second], "exp_a", 0, tmp_path))
    assert data["device_indices"] == [0, 1] and data["sample_count"] == 5
    first = data["samples"][0]
    assert first["power_w"] == 150.0 and first["mem_mb"] == 1010.0 and first["temp_c"] == 70.0
    assert data["summary"]["thermal_throttle_sample_count"] == 2


def test_empty_run_writes_a_header_with_nulls(tmp_path: Path) -> None:
    data = load_timeseries(export_timeseries([], "exp_e", 0, tmp_path))
    assert data["sample_count"] == 0 and data["samples"] == []
    assert data["duration_sec"] is None
    assert set(data["summary"]) == SUMMARY_KEYS
    assert all(v is None for v in data["summary"].values())


def test_written_atomically_as_compact_json(tmp_path: Path) -> None:
    path = export_timeseries(gpu_samples(), "exp_a", 0, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    raw = path.read_bytes()
    assert b"\n" not in raw and orjson.loads(raw)["schema_version"] == 2


def test_load_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_timeseries(tmp_path / "process_0_timeseries.json")


def test_load_refuses_a_newer_version(tmp_path: Path) -> None:
    path = tmp_path / "process_0_timeseries.json"
    path.write_bytes(orjson.dumps({"schema_version": 99, "samples": []}))
    with pytest.raises(ResultsError, match="schema_version 99"):
        load_timeseries(path)


def test_aggregate_bundles_processes_in_index_order(tmp_path: Path) -> None:
    paths = [
        export_timeseries(cpu_samples(), "exp_b", 1, tmp_path),
        export_timeseries(gpu_samples(), "exp_b", 0, tmp_path),
    ]
    bundle = load_timeseries(aggregate_timeseries(paths, tmp_path / "bundle.json", "exp_b"))
    assert bundle["experiment_id"] == "exp_b" and bundle["process_count"] == 2
    assert [p["process_index"] for p in bundle["processes"]] == [0, 1]
    assert bundle["processes"][0]["sample_count"] == 5


def test_built_from_a_parquet_sidecar(tmp_path: Path) -> None:
    sidecar = write_timeseries_parquet(
        gpu_samples(), tmp_path / "process_0_timeseries.parquet", start_s=500.0, resample_hz=0
    )
    rows = read_sidecar_samples(sidecar)
    data = load_timeseries(export_timeseries(rows, "exp_p", 0, tmp_path, 100, start_s=0.0))
    assert data["sample_count"] == 5
    assert data["summary"]["power_mean_w"] == 200.0
    assert data["summary"]["thermal_throttle_sample_count"] == 2
    assert [s["t"] for s in data["samples"]] == [0.0, 0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize(("resample_hz", "expected_ms"), [(1.0, 1000), (0, 100), (None, None)])
def test_sidecar_interval_follows_the_resampling(resample_hz, expected_ms) -> None:
    series = {} if resample_hz is None else {"timeseries": {"resample_hz": resample_hz}}
    manifest = ExperimentManifest(
        experiment_id="x",
        config={"measurement": series},
        config_hash="0",
        expected_num_processes=1,
        created_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
    )
    result = RawProcessResult.model_construct(sample_interval_ms=100)
    assert sidecar_interval_ms(manifest, result) == expected_ms
