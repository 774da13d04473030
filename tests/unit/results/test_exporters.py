from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from llenergymeasure.domain.environment import EnvironmentMetadata, GpuInfo
from llenergymeasure.domain.experiment import (
    AggregatedResult,
    AggregationInfo,
    ProcessSummary,
    RawProcessResult,
)
from llenergymeasure.domain.metrics import (
    DeviceEnergy,
    EnergyBreakdown,
    EnergyMeasurement,
    ExtendedMetrics,
    FlopsResult,
    LatencyStats,
    MeasurementWarning,
    ThermalThrottleInfo,
)
from llenergymeasure.results.csv_columns import order_columns
from llenergymeasure.results.exporters import export_aggregated_to_csv, export_raw_to_csv
from llenergymeasure.results.layout import read_model

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"

# Written out here rather than taken from the module: this is the contract (docs/formats.md).
CORE = [
    "experiment_id",
    "config_name",
    "model_name",
    "num_processes",
    "num_requests",
    "input_tokens",
    "output_tokens",
    "wall_window_s",
    "avg_tokens_per_second",
    "total_tokens_per_second",
    "energy_method",
    "energy_per_output_token_j",
    "total_flops",
    "flops_method",
    "flops_useful",
    "flops_executed",
    "created_at",
    "aggregated_at",
]
GROUPED = [
    "energy_raw_j",
    "energy_adjusted_j",
    "energy_baseline_w",
    "energy_baseline_method",
    "energy_boundary",
    "energy_baseline_std_w",
    "energy_baseline_energy_j",
    "energy_gpu_j",
    "energy_gpu_above_idle_j",
    "energy_gpu_per_output_token_j",
    "energy_gpu_above_idle_per_output_token_j",
    "energy_cpu_dram_j",
    "energy_cpu_dram_above_idle_j",
    "energy_cpu_dram_per_output_token_j",
    "energy_cpu_dram_above_idle_per_output_token_j",
    "energy_node_j",
    "energy_node_above_idle_j",
    "energy_node_per_output_token_j",
    "energy_node_above_idle_per_output_token_j",
    "energy_facility_j",
    "energy_facility_above_idle_j",
    "energy_facility_per_output_token_j",
    "energy_facility_above_idle_per_output_token_j",
    "energy_facility_co2e_g",
    "energy_scope",
    "thermal_throttle_detected",
    "thermal_throttle_duration_sec",
    "thermal_max_temp_c",
    "throttle_power_cap_duration_s",
    "throttle_hw_slowdown_duration_s",
    "env_gpu_name",
    "env_gpu_vram_mb",
    "env_cuda_version",
    "env_driver_version",
    "env_gpu_temp_c",
    "env_power_limit_w",
    "env_cpu_governor",
    "env_in_container",
    "env_summary",
    "gpu_util_mean_pct",
    "gpu_mem_peak_mb",
    "process_rss_peak_mb",
    "latency_e2e_mean_ms",
    "latency_e2e_p95_ms",
    "latency_ttft_p50_ms",
    "latency_ttft_p95_ms",
    "latency_itl_p50_ms",
    "latency_itl_p95_ms",
    "latency_batch_return_p50_ms",
    "latency_batch_return_p95_ms",
    "batch_effective_size",
    "kv_cache_hit_rate",
    "padding_share",
    "padding_output_share",
    "padding_prompt_positions",
    "padding_prompt_real_tokens",
    "padding_output_positions",
    "deployment_batching",
    "deployment_max_batch_tokens",
    "deployment_batch_count",
    "deployment_attn_implementation_requested",
    "deployment_attn_implementation_effective",
    "deployment_dtype_requested",
    "deployment_dtype_effective",
    "deployment_torch_compile_requested",
    "deployment_torch_compile_effective",
    "deployment_compile_s",
    "deployment_cache_implementation_requested",
    "deployment_cache_implementation_effective",
    "quantization_method",
    "quantization_bits",
    "quantization_compute_dtype",
    "quantization_quantized_weights",
    "quantization_unquantized_memory_mb",
    "model_memory_mb",
    "phase_attributed_prefill_j",
    "phase_attributed_decode_j",
    "phase_subtraction_prefill_j",
    "phase_subtraction_decode_j",
    "phase_subtraction_prefill_j_per_token",
    "phase_subtraction_decode_j_per_token",
    "timeseries_path",
    "warning_codes",
    "config_hash",
]
PREFIX_ORDER = [
    "energy",
    "thermal",
    "throttle",
    "env",
    "gpu",
    "process_rss",
    "latency",
    "batch",
    "kv_cache",
    "padding",
    "deployment",
    "quantization",
    "model_memory",
    "phase",
    "timeseries",
    "warning",
    "config",
]


def environment(host: str, gpu_name: str) -> EnvironmentMetadata:
    return EnvironmentMetadata(
        host=host,
        os="Linux",
        python_version="3.11.7",
        cpu_governor="performance",
        in_container=False,
        cuda_available=True,
        cuda_version="12.4",
        driver_version="550.54",
        gpus=[
            GpuInfo(
                index=0,
                uuid=f"GPU-{host}",
                name=gpu_name,
                vram_mb=81559.0,
                power_limit_w=700.0,
                temperature_c=41.0,
            )
        ],
        summary_line=f"{host}: {gpu_name}",
    )


def aggregated(experiment_id: str = "gpu_20260101T000000_abcd", **update: Any) -> AggregatedResult:
    result = AggregatedResult(
        experiment_id=experiment_id,
        config_name="gpu",
        model_name="org/model",
        aggregation=AggregationInfo(
            method="sum",
            num_processes=2,
            expected_num_processes=2,
            temporal_overlap_verified=True,
            gpu_attribution_verified=True,
        ),
        hosts=["node-a", "node-b"],
        inference_start_unix_s=1_700_000_000.125,
        inference_end_unix_s=1_700_000_012.5,
        wall_window_s=12.375,
        num_requests=64,
        input_tokens=5000,
        output_tokens=2048,
        avg_tokens_per_second=0.1 + 0.2,
        total_tokens_per_second=1 / 3,
        energy_method="nvml_counter",
        energy_breakdown=EnergyBreakdown(
            raw_j=1234.5678901234567,
            adjusted_j=1000.0000000000001,
            baseline_power_w=60.25,
            baseline_method="cached",
            inference_duration_s=12.375,
        ),
        energy_per_output_token_j=1234.5678901234567 / 2048,
        total_flops=7.123456789e14,
        flops_method="palm_2n",
        latency=LatencyStats(
            e2e_mean_ms=812.5, e2e_p95_ms=1500.25, ttft_p50_ms=40.0, itl_p95_ms=12.75
        ),
        thermal_throttle=ThermalThrottleInfo(
            detected=True,
            thermal=True,
            duration_s=1.5,
            thermal_duration_s=1.5,
            max_temperature_c=83.0,
        ),
        environments={
            "node-b": environment("node-b", "NVIDIA H100 80GB HBM3"),
            "node-a": environment("node-a", "NVIDIA A100-SXM4-80GB"),
        },
        extended=ExtendedMetrics(
            gpu_util_mean_pct=97.5, gpu_mem_peak_mb=40960.0, batch_effective_size=8.0
        ),
        processes=[
            ProcessSummary(
                process_index=0,
                host="node-a",
                device_ids=["GPU-aaaa"],
                output_tokens=1000,
                energy_j=600.5,
                tokens_per_second=80.0,
            ),
            ProcessSummary(
                process_index=1,
                host="node-b",
                device_ids=["MIG-bbbb", "package-0"],
                output_tokens=1048,
                energy_j=634.0678901234567,
                tokens_per_second=84.25,
            ),
        ],
        created_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc),
    )
    return result.model_copy(update=update)


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def test_core_columns_then_groups_in_design_order(tmp_path: Path) -> None:
    header, _ = read_rows(export_aggregated_to_csv([aggregated()], tmp_path / "a.csv"))
    assert header == CORE + GROUPED
    assert "total_energy_j" not in header and header.count("energy_raw_j") == 1
    prefixes = [next(p for p in PREFIX_ORDER if c.startswith(p)) for c in header[len(CORE) :]]
    assert prefixes == sorted(prefixes, key=PREFIX_ORDER.index), "a group is split"


def test_numbers_round_trip_through_csv_module_and_pandas(tmp_path: Path) -> None:
    result = aggregated()
    path = export_aggregated_to_csv([result], tmp_path / "a.csv")
    _, rows = read_rows(path)
    assert float(rows[0]["avg_tokens_per_second"]) == 0.1 + 0.2
    assert float(rows[0]["energy_raw_j"]) == result.energy_breakdown.raw_j
    frame = pd.read_csv(path)
    assert frame.loc[0, "total_tokens_per_second"] == 1 / 3
    assert frame.loc[0, "energy_per_output_token_j"] == result.energy_per_output_token_j
    assert frame.loc[0, "total_flops"] == 7.123456789e14
    assert frame.loc[0, "output_tokens"] == 2048
    assert bool(frame.loc[0, "thermal_throttle_detected"]) is True
    assert frame.loc[0, "energy_baseline_method"] == "cached"
    assert frame.loc[0, "created_at"] == "2026-01-01T12:00:00+00:00"


def test_thermal_throttle_columns_mean_thermal_only(tmp_path: Path) -> None:
    capped = ThermalThrottleInfo(
        detected=True,
        thermal=False,
        power=True,
        duration_s=4.0,
        thermal_duration_s=0.0,
        power_cap_duration_s=4.0,
        hw_slowdown_duration_s=0.5,
    )
    result = aggregated(thermal_throttle=capped)
    _, rows = read_rows(export_aggregated_to_csv([result], tmp_path / "a.csv"))
    assert rows[0]["thermal_throttle_detected"] == "false"
    assert float(rows[0]["thermal_throttle_duration_sec"]) == 0.0
    assert float(rows[0]["throttle_power_cap_duration_s"]) == 4.0
    assert float(rows[0]["throttle_hw_slowdown_duration_s"]) == 0.5


def test_environment_is_process_zeros_host(tmp_path: Path) -> None:
    _, rows = read_rows(export_aggregated_to_csv([aggregated()], tmp_path / "a.csv"))
    assert rows[0]["env_gpu_name"] == "NVIDIA A100-SXM4-80GB"
    assert rows[0]["env_summary"] == "node-a: NVIDIA A100-SXM4-80GB"
    assert rows[0]["env_power_limit_w"] == "700.0"
    assert rows[0]["env_in_container"] == "false"


def test_unmeasured_values_are_empty_cells(tmp_path: Path) -> None:
    cpu = aggregated(
        thermal_throttle=ThermalThrottleInfo(),
        extended=ExtendedMetrics(batch_effective_size=4.0),
        environments={"node-a": EnvironmentMetadata(host="node-a", os="Linux", python_version="3")},
        total_flops=None,
    )
    path = export_aggregated_to_csv([cpu], tmp_path / "a.csv")
    _, rows = read_rows(path)
    for column in ("thermal_throttle_detected", "env_gpu_name", "gpu_util_mean_pct", "total_flops"):
        assert rows[0][column] == "", column
    assert rows[0]["kv_cache_hit_rate"] == "" and rows[0]["batch_effective_size"] == "4.0"
    frame = pd.read_csv(path)
    assert frame[["gpu_mem_peak_mb", "env_gpu_vram_mb", "timeseries_path"]].isna().all(axis=None)


def test_per_process_columns_follow_the_groups(tmp_path: Path) -> None:
    path = export_aggregated_to_csv([aggregated()], tmp_path / "a.csv", per_process=True)
    header, rows = read_rows(path)
    assert header[len(CORE) + len(GROUPED) :] == [
        f"process_{i}_{field}"
        for i in (0, 1)
        for field in ("gpu_uuid", "tokens", "energy_j", "energy_scope", "tokens_per_second")
    ]
    row = rows[0]
    assert row["process_0_gpu_uuid"] == "GPU-aaaa"
    assert row["process_1_gpu_uuid"] == "MIG-bbbb"  # package-0 is RAPL, not a GPU
    assert float(row["process_1_energy_j"]) == 634.0678901234567
    assert int(row["process_0_tokens"]) + int(row["process_1_tokens"]) == 2048


def test_many_experiments_share_one_header(tmp_path: Path) -> None:
    one_process = aggregated(
        "cpu_20260102T000000_beef",
        aggregation=aggregated().aggregation.model_copy(
            update={"num_processes": 1, "expected_num_processes": 1}
        ),
        processes=aggregated().processes[:1],
    )
    path = export_aggregated_to_csv(
        [aggregated(), one_process], tmp_path / "many.csv", per_process=True
    )
    frame = pd.read_csv(path)
    assert list(frame["experiment_id"]) == [
        "gpu_20260101T000000_abcd",
        "cpu_20260102T000000_beef",
    ]
    assert frame.loc[1, "process_0_tokens"] == 1000
    assert pd.isna(frame.loc[1, "process_1_tokens"])


def test_timeseries_path_is_resolved_against_the_experiment_dir(tmp_path: Path) -> None:
    experiment_id = "gpu_20260101T000000_abcd"
    sidecar = tmp_path / "raw" / experiment_id / "process_0_timeseries.parquet"
    sidecar.parent.mkdir(parents=True)
    sidecar.write_bytes(b"PAR1")
    result = aggregated(
        timeseries_paths=["process_0_timeseries.parquet", "process_1_timeseries.parquet"]
    )
    _, rows = read_rows(
        export_aggregated_to_csv([result], tmp_path / "a.csv", results_root=tmp_path)
    )
    assert rows[0]["timeseries_path"] == str(sidecar.absolute())  # process 1's is gone
    _, rows = read_rows(export_aggregated_to_csv([result], tmp_path / "b.csv"))
    assert rows[0]["timeseries_path"] == "process_0_timeseries.parquet;process_1_timeseries.parquet"


def test_old_schema_result_exports_with_empty_cells(tmp_path: Path) -> None:
    old = read_model(FIXTURES / "aggregated_schema_v1_minimal.json", AggregatedResult)
    path = export_aggregated_to_csv([old], tmp_path / "old.csv", per_process=True)
    header, rows = read_rows(path)
    assert header[: len(CORE) + len(GROUPED)] == CORE + GROUPED
    row = rows[0]
    assert row["energy_raw_j"] == "412.75" and row["energy_method"] == "rapl"
    empty = [c for c in GROUPED if not c.startswith("energy_")] + ["created_at", "total_flops"]
    empty += ["flops_useful", "flops_executed"]
    assert all(row[c] == "" for c in empty), [c for c in empty if row[c]]
    assert row["process_1_tokens"] == "" and "process_1_energy_j" in header


def test_raw_csv_one_row_per_process(tmp_path: Path) -> None:
    results = [raw_result(0), raw_result(1)]
    path = export_raw_to_csv(results, tmp_path / "raw.csv")
    header, rows = read_rows(path)
    assert header[:7] == [
        "experiment_id",
        "process_index",
        "num_processes",
        "host",
        "pid",
        "device",
        "gpu_uuid",
    ]
    assert header[-len(GROUPED) :] == GROUPED
    assert [r["gpu_uuid"] for r in rows] == ["GPU-0", "GPU-1"]
    frame = pd.read_csv(path)
    assert list(frame["energy_raw_j"]) == [100.25, 101.25]
    assert frame["env_gpu_name"].isna().all() and frame["thermal_max_temp_c"].isna().all()


def test_order_columns_refuses_unknown_names() -> None:
    shuffled = ["process_1_tokens", "timeseries_path", "process_0_energy_j", *reversed(CORE)]
    ordered = order_columns(shuffled, CORE)
    assert ordered == [*CORE, "timeseries_path", "process_0_energy_j", "process_1_tokens"]
    with pytest.raises(ValueError, match="total_energy_j"):
        order_columns(["total_energy_j"], CORE)


def raw_result(index: int) -> RawProcessResult:
    moment = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return RawProcessResult(
        experiment_id="gpu_20260101T000000_abcd",
        process_index=index,
        num_processes=2,
        host="node-a",
        pid=1000 + index,
        config_name="gpu",
        model_name="org/model",
        started_at=moment,
        ended_at=moment,
        inference_start_unix_s=1.0,
        inference_end_unix_s=11.0,
        inference_duration_s=10.0,
        num_requests=8,
        input_tokens=400,
        output_tokens=128,
        tokens_per_second=12.8,
        energy_method="nvml_counter",
        energy=EnergyMeasurement(
            method="nvml_counter",
            host="node-a",
            devices=[
                DeviceEnergy(device_id=f"GPU-{index}", kind="gpu", scope="device", energy_j=1.0)
            ],
            window_start_unix_s=1.0,
            window_end_unix_s=11.0,
            duration_s=10.0,
        ),
        energy_breakdown=EnergyBreakdown(
            raw_j=100.25 + index,
            adjusted_j=50.0,
            baseline_power_w=5.0,
            baseline_method="fresh",
            inference_duration_s=10.0,
        ),
    )


def test_flops_columns_come_from_their_own_fields(tmp_path: Path) -> None:
    result = aggregated(
        total_flops=6.5e14, flops_useful=6.5e14, flops_executed=9.25e14, flops_method="m"
    )
    _, rows = read_rows(export_aggregated_to_csv([result], tmp_path / "a.csv"))
    assert float(rows[0]["flops_useful"]) == 6.5e14
    assert float(rows[0]["flops_executed"]) == 9.25e14
    assert rows[0]["flops_method"] == "m"

    process = raw_result(0).model_copy(
        update={
            "flops": FlopsResult(
                method="analytic_2n_attn",
                total_flops=3.0e12,
                flops_useful=3.0e12,
                flops_executed=4.5e12,
                non_embedding_params=10**8,
                tokens_processed=528,
            )
        }
    )
    _, rows = read_rows(export_raw_to_csv([process], tmp_path / "raw.csv"))
    assert float(rows[0]["total_flops"]) == 3.0e12
    assert float(rows[0]["flops_useful"]) == 3.0e12
    assert float(rows[0]["flops_executed"]) == 4.5e12
    assert rows[0]["flops_method"] == "analytic_2n_attn"


def test_warning_codes_are_a_column_of_their_own(tmp_path: Path) -> None:
    result = aggregated().model_copy(
        update={
            "warnings": [
                MeasurementWarning(code="host_contention", message="m", remediation="r"),
                MeasurementWarning(code="gpu_shared", message="m", remediation="r"),
            ]
        }
    )
    _, rows = read_rows(export_aggregated_to_csv([result], tmp_path / "a.csv"))
    assert rows[0]["warning_codes"] == "host_contention;gpu_shared"
