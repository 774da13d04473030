"""Each CSV column holds its own field: results whose every figure is distinct.

A column filled from a neighbouring field (p50 for p95, the spread for the baseline)
gives a plausible number, so the other export tests, whose figures repeat or are left
unset, cannot see it. Here every numeric field has a value no other field has.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from itertools import count
from pathlib import Path
from typing import Any

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
    ThermalThrottleInfo,
)
from llenergymeasure.results.exporters import export_aggregated_to_csv, export_raw_to_csv

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
Getter = Callable[[Any], Any]

# Column -> the field it must hold, written out here: this is the contract.
GROUPED: dict[str, Getter] = {
    "energy_raw_j": lambda r: r.energy_breakdown.raw_j,
    "energy_adjusted_j": lambda r: r.energy_breakdown.adjusted_j,
    "energy_baseline_w": lambda r: r.energy_breakdown.baseline_power_w,
    "thermal_throttle_duration_sec": lambda r: r.thermal_throttle.thermal_duration_s,
    "throttle_power_cap_duration_s": lambda r: r.thermal_throttle.power_cap_duration_s,
    "throttle_hw_slowdown_duration_s": lambda r: r.thermal_throttle.hw_slowdown_duration_s,
    "thermal_max_temp_c": lambda r: r.thermal_throttle.max_temperature_c,
    "gpu_util_mean_pct": lambda r: r.extended.gpu_util_mean_pct,
    "gpu_mem_peak_mb": lambda r: r.extended.gpu_mem_peak_mb,
    "latency_e2e_mean_ms": lambda r: r.latency.e2e_mean_ms,
    "latency_e2e_p95_ms": lambda r: r.latency.e2e_p95_ms,
    "latency_ttft_p50_ms": lambda r: r.latency.ttft_p50_ms,
    "latency_ttft_p95_ms": lambda r: r.latency.ttft_p95_ms,
    "latency_itl_p50_ms": lambda r: r.latency.itl_p50_ms,
    "latency_itl_p95_ms": lambda r: r.latency.itl_p95_ms,
    "batch_effective_size": lambda r: r.extended.batch_effective_size,
    "kv_cache_hit_rate": lambda r: r.extended.kv_cache_hit_rate,
}
ENVIRONMENT: dict[str, Getter] = {
    "env_gpu_vram_mb": lambda e: e.gpus[0].vram_mb,
    "env_gpu_temp_c": lambda e: e.gpus[0].temperature_c,
    "env_power_limit_w": lambda e: e.gpus[0].power_limit_w,
}
AGGREGATED: dict[str, Getter] = {
    "num_processes": lambda r: r.aggregation.num_processes,
    "num_requests": lambda r: r.num_requests,
    "input_tokens": lambda r: r.input_tokens,
    "output_tokens": lambda r: r.output_tokens,
    "wall_window_s": lambda r: r.wall_window_s,
    "avg_tokens_per_second": lambda r: r.avg_tokens_per_second,
    "total_tokens_per_second": lambda r: r.total_tokens_per_second,
    "energy_per_output_token_j": lambda r: r.energy_per_output_token_j,
    "total_flops": lambda r: r.total_flops,
    "process_0_tokens": lambda r: r.processes[0].output_tokens,
    "process_0_energy_j": lambda r: r.processes[0].energy_j,
    "process_0_tokens_per_second": lambda r: r.processes[0].tokens_per_second,
    "process_1_tokens": lambda r: r.processes[1].output_tokens,
    "process_1_energy_j": lambda r: r.processes[1].energy_j,
    "process_1_tokens_per_second": lambda r: r.processes[1].tokens_per_second,
    **GROUPED,
}
RAW: dict[str, Getter] = {
    "process_index": lambda r: r.process_index,
    "num_processes": lambda r: r.num_processes,
    "pid": lambda r: r.pid,
    "inference_start_unix_s": lambda r: r.inference_start_unix_s,
    "inference_duration_s": lambda r: r.inference_duration_s,
    "num_requests": lambda r: r.num_requests,
    "input_tokens": lambda r: r.input_tokens,
    "output_tokens": lambda r: r.output_tokens,
    "tokens_per_second": lambda r: r.tokens_per_second,
    "energy_per_output_token_j": lambda r: r.energy_per_output_token_j,
    "total_flops": lambda r: r.flops.total_flops,
    "sample_interval_ms": lambda r: r.sample_interval_ms,
    "sample_count": lambda r: r.sample_count,
    **GROUPED,
}


def distinct_values() -> Iterator[float]:
    """1.125, 2.25, 3.375, ...: no two fields share a value."""
    return (k * 1.125 for k in count(1))


def latency(v: Iterator[float]) -> LatencyStats:
    names = ("ttft", "itl", "e2e")
    return LatencyStats(
        **{f"{n}_{s}_ms": next(v) for n in names for s in ("mean", "p50", "p95")},
        num_requests=7,
    )


def breakdown(v: Iterator[float]) -> EnergyBreakdown:
    return EnergyBreakdown(
        raw_j=next(v),
        adjusted_j=next(v),
        baseline_power_w=next(v),
        baseline_std_w=next(v),
        baseline_method="fresh",
        inference_duration_s=next(v),
    )


def throttle(v: Iterator[float]) -> ThermalThrottleInfo:
    return ThermalThrottleInfo(
        detected=True,
        thermal=True,
        duration_s=next(v),
        thermal_duration_s=next(v),
        power_cap_duration_s=next(v),
        hw_slowdown_duration_s=next(v),
        max_temperature_c=next(v),
    )


def extended(v: Iterator[float]) -> ExtendedMetrics:
    return ExtendedMetrics(**{name: next(v) for name in ExtendedMetrics.model_fields})


def environment(v: Iterator[float]) -> EnvironmentMetadata:
    gpu = GpuInfo(
        index=0,
        uuid="GPU-a",
        name="gpu",
        vram_mb=next(v),
        power_limit_w=next(v),
        default_power_limit_w=next(v),
        temperature_c=next(v),
    )
    return EnvironmentMetadata(host="h0", os="Linux", python_version="3.11", gpus=[gpu])


def aggregated_result() -> AggregatedResult:
    v = distinct_values()
    return AggregatedResult(
        experiment_id="exp_20260101T000000_abcd",
        config_name="exp",
        model_name="m",
        aggregation=AggregationInfo(
            method="sum",
            num_processes=2,
            expected_num_processes=2,
            temporal_overlap_verified=True,
            gpu_attribution_verified=True,
        ),
        hosts=["h0"],
        inference_start_unix_s=next(v),
        inference_end_unix_s=next(v),
        wall_window_s=next(v),
        num_requests=11,
        input_tokens=13,
        output_tokens=17,
        avg_tokens_per_second=next(v),
        total_tokens_per_second=next(v),
        energy_method="nvml_counter",
        energy_breakdown=breakdown(v),
        energy_per_output_token_j=next(v),
        total_flops=next(v),
        flops_method="palm_2n",
        latency=latency(v),
        thermal_throttle=throttle(v),
        environments={"h0": environment(v)},
        extended=extended(v),
        processes=[
            ProcessSummary(
                process_index=i,
                host="h0",
                device_ids=[f"GPU-{i}"],
                output_tokens=19 + i,
                energy_j=next(v),
                tokens_per_second=next(v),
            )
            for i in (0, 1)
        ],
        created_at=NOW,
    )


def raw_result() -> RawProcessResult:
    v = distinct_values()
    start = next(v)
    return RawProcessResult(
        experiment_id="exp_20260101T000000_abcd",
        process_index=3,
        num_processes=5,
        host="h0",
        pid=4242,
        config_name="exp",
        model_name="m",
        started_at=NOW,
        ended_at=NOW,
        inference_start_unix_s=start,
        inference_end_unix_s=start + 1000.5,
        inference_duration_s=next(v),
        num_requests=11,
        input_tokens=13,
        output_tokens=17,
        tokens_per_second=next(v),
        energy_method="nvml_counter",
        energy=EnergyMeasurement(
            method="nvml_counter",
            host="h0",
            devices=[DeviceEnergy(device_id="GPU-a", kind="gpu", scope="device", energy_j=1.0)],
            window_start_unix_s=0.0,
            window_end_unix_s=1.0,
            duration_s=1.0,
        ),
        energy_breakdown=breakdown(v),
        energy_per_output_token_j=next(v),
        flops=FlopsResult(total_flops=next(v), non_embedding_params=23, tokens_processed=29),
        latency=latency(v),
        thermal_throttle=throttle(v),
        environment=environment(v),
        extended=extended(v),
        sample_interval_ms=31,
        sample_count=37,
    )


def only_row(path: Path) -> dict[str, str]:
    with open(path, newline="") as fh:
        (row,) = csv.DictReader(fh)
    return row


def mismatches(row: dict[str, str], result: Any, contract: dict[str, Getter]) -> list[str]:
    """Columns whose cell is not their field's value (all fields here are numbers)."""
    return [
        f"{column}: {row[column]!r} != {getter(result)!r}"
        for column, getter in contract.items()
        if float(row[column]) != float(getter(result))
    ]


def test_every_aggregated_column_holds_its_own_field(tmp_path: Path) -> None:
    result = aggregated_result()
    values = [g(result) for g in AGGREGATED.values()] + [
        g(result.environments["h0"]) for g in ENVIRONMENT.values()
    ]
    assert len(set(values)) == len(values), "the test needs a distinct value per field"
    row = only_row(export_aggregated_to_csv([result], tmp_path / "a.csv", per_process=True))
    assert mismatches(row, result, AGGREGATED) == []
    assert mismatches(row, result.environments["h0"], ENVIRONMENT) == []


def test_every_raw_column_holds_its_own_field(tmp_path: Path) -> None:
    result = raw_result()
    values = [g(result) for g in RAW.values()] + [
        g(result.environment) for g in ENVIRONMENT.values()
    ]
    assert len(set(values)) == len(values), "the test needs a distinct value per field"
    row = only_row(export_raw_to_csv([result], tmp_path / "raw.csv"))
    assert mismatches(row, result, RAW) == []
    assert mismatches(row, result.environment, ENVIRONMENT) == []


def test_a_figure_that_is_not_a_number_is_an_empty_cell(tmp_path: Path) -> None:
    result = aggregated_result().model_copy(
        update={"avg_tokens_per_second": float("nan"), "total_tokens_per_second": float("inf")}
    )
    row = only_row(export_aggregated_to_csv([result], tmp_path / "a.csv"))
    assert row["avg_tokens_per_second"] == "" and row["total_tokens_per_second"] == ""
    assert float(row["wall_window_s"]) == result.wall_window_s
