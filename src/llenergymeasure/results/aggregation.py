"""Combine the processes of an experiment into one result, refusing what does not add up.

Completeness -> temporal overlap -> GPU attribution (`verification`) -> sums. What is
summed, averaged or pooled, and why:
- energy: device-level readings (each GPU owned by one process) are summed; a
  machine-level reading (RAPL, CPU estimate) covers every process of its host, so each
  host counts one: the reading whose window is the longest, which covers the others'
  when they ran together (a warning says which was taken when it does not);
- tokens, requests, FLOPs: summed (each process ran a disjoint shard);
- throughput: the mean of per-process tokens/s, and all tokens over the wall window
  (first start to last end);
- latency: percentiles of the pooled per-request samples, never averaged percentiles;
- throttling: OR of the flags, the longest duration, the highest temperature;
- environment: one per host.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure.domain.experiment import (
    AggregatedResult,
    AggregationInfo,
    EnergyScope,
    ExperimentManifest,
    ProcessSummary,
    RawProcessResult,
)
from llenergymeasure.domain.metrics import (
    EnergyBreakdown,
    EnergyMethod,
    ExtendedMetrics,
    LatencyStats,
    MeasurementWarning,
    ThermalThrottleInfo,
)
from llenergymeasure.errors import IncompleteExperiment, UnverifiedExperiment
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model, write_model
from llenergymeasure.results.verification import (
    Completeness,
    Verification,
    check_completeness,
    check_not_running,
    cyclic_gc_paused,
    verify_processes,
)
from llenergymeasure.results.verification import describe as describe
from llenergymeasure.results.verification import (
    load_complete_processes as load_complete_processes,
)

# `describe` and `load_complete_processes` are re-exported: cli/export.py reads them here.
METHOD = "sum_device_energy_once_per_host_machine_energy"
# A machine-level window missing more than this share of its host's processes' span is
# reported: energy used outside it is not counted.
MACHINE_WINDOW_COVERAGE = 0.99


def aggregate_experiment(
    layout: ResultsLayout,
    experiment_id: str,
    *,
    allow_partial: bool = False,
    allow_unverified: bool = False,
) -> tuple[AggregatedResult, Path]:
    """Verify and aggregate `raw/<id>`, then write `aggregated/<id>.json`.

    Args:
        layout: the results root.
        experiment_id: the experiment to aggregate.
        allow_partial: aggregate the complete processes when some are missing or broken.
        allow_unverified: aggregate even when the windows do not overlap or a device is
            claimed twice (the result records it).

    Raises:
        IncompleteExperiment: a process is missing or unverifiable (and not allow_partial),
            or the experiment is still running.
        UnverifiedExperiment: overlap or attribution failed (and not allow_unverified).

    """
    with cyclic_gc_paused():
        return _aggregate_experiment(layout, experiment_id, allow_partial, allow_unverified)


def _aggregate_experiment(
    layout: ResultsLayout, experiment_id: str, allow_partial: bool, allow_unverified: bool
) -> tuple[AggregatedResult, Path]:
    experiment_dir = layout.experiment_dir(experiment_id)
    manifest = read_model(manifest_path(experiment_dir), ExperimentManifest)
    completeness = check_completeness(experiment_dir, manifest)
    how_left = check_not_running(experiment_dir, manifest, completeness)
    if completeness.problems and not allow_partial:
        raise IncompleteExperiment(
            f"{experiment_dir}: incomplete: {'; '.join(completeness.problems)} "
            f"({how_left + '; ' if how_left else ''}rerun, or aggregate with --allow-partial)"
        )
    if not completeness.results:
        raise IncompleteExperiment(f"{experiment_dir}: no complete process result to aggregate")
    verification = verify_processes(completeness.results)
    if verification.problems and not allow_unverified:
        raise UnverifiedExperiment(
            f"{experiment_dir}: not aggregated: {'; '.join(verification.problems)} "
            "(aggregate with --allow-unverified to keep the sums, flagged as unverified)"
        )
    aggregated = aggregate_results(manifest, completeness, verification)
    path = layout.aggregated_path(experiment_id)
    write_model(path, aggregated)
    return aggregated, path


def aggregate_results(
    manifest: ExperimentManifest, completeness: Completeness, verification: Verification
) -> AggregatedResult:
    """Pure combination of verified process results."""
    results = sorted(completeness.results, key=lambda r: r.process_index)
    first = results[0]
    start = min(r.inference_start_unix_s for r in results)
    end = max(r.inference_end_unix_s for r in results)
    wall_s = end - start
    output_tokens = sum(r.output_tokens for r in results)
    breakdown, energy_notes = combine_energy(results)
    energy_method, method_notes = combine_energy_method(results)
    rates = [r.tokens_per_second for r in results if r.tokens_per_second is not None]
    flops = [r.flops.total_flops if r.flops else None for r in results]
    return AggregatedResult(
        experiment_id=manifest.experiment_id,
        config_name=first.config_name,
        model_name=first.model_name,
        aggregation=AggregationInfo(
            method=METHOD,
            num_processes=len(results),
            expected_num_processes=manifest.expected_num_processes,
            partial=bool(completeness.problems),
            missing_processes=sorted(completeness.missing),
            temporal_overlap_verified=verification.temporal_overlap_verified,
            gpu_attribution_verified=verification.gpu_attribution_verified,
            warnings=[
                *completeness.problems,
                *verification.problems,
                *energy_notes,
                *method_notes,
            ],
        ),
        hosts=sorted({r.host for r in results}),
        inference_start_unix_s=start,
        inference_end_unix_s=end,
        wall_window_s=wall_s,
        num_requests=sum(r.num_requests for r in results),
        input_tokens=sum(r.input_tokens for r in results),
        output_tokens=output_tokens,
        avg_tokens_per_second=statistics.fmean(rates) if rates else None,
        total_tokens_per_second=output_tokens / wall_s if wall_s > 0 else None,
        energy_method=energy_method,
        energy_breakdown=breakdown,
        energy_per_output_token_j=(
            breakdown.raw_j / output_tokens
            if breakdown is not None and breakdown.raw_j is not None and output_tokens
            else None
        ),
        total_flops=None if any(f is None for f in flops) else float(sum(flops)),
        flops_method=first.flops.method if first.flops else None,
        latency=LatencyStats.pooled([r.latency_samples for r in results if r.latency_samples]),
        thermal_throttle=combine_throttle(results),
        environments={r.host: r.environment for r in reversed(results) if r.environment},
        extended=combine_extended(results),
        processes=[process_summary(r) for r in results],
        timeseries_paths=[r.timeseries_path for r in results if r.timeseries_path],
        warnings=merge_warnings(results),
        created_at=manifest.created_at,
        aggregated_at=datetime.now(timezone.utc),
    )


def merge_warnings(results: list[RawProcessResult]) -> list[MeasurementWarning]:
    """One warning per (code, message), naming every process that gave it, in first-seen order."""
    merged: dict[tuple[str, str], tuple[MeasurementWarning, list[int]]] = {}
    for r in results:
        for w in r.warnings:
            _, indices = merged.setdefault((w.code, w.message), (w, []))
            if r.process_index not in indices:
                indices.append(r.process_index)
    return [w.model_copy(update={"processes": sorted(i)}) for w, i in merged.values()]


def is_machine_level(result: RawProcessResult) -> bool:
    """True when the process's energy covers its whole host (RAPL, CPU estimate)."""
    devices = result.energy.devices if result.energy else []
    return bool(devices) and all(d.scope == "machine" for d in devices)


def combine_energy(results: list[RawProcessResult]) -> tuple[EnergyBreakdown | None, list[str]]:
    """Sum device-level breakdowns and one machine-level breakdown per host.

    Returns:
        The combined breakdown (None when no process measured energy) and notes on
        machine-level readings whose window does not cover their host's processes.

    """
    counted = [
        r.energy_breakdown
        for r in results
        if r.energy_breakdown is not None and not is_machine_level(r)
    ]
    by_host: dict[str, list[RawProcessResult]] = defaultdict(list)
    for r in results:
        if r.energy_breakdown is not None and is_machine_level(r):
            by_host[r.host].append(r)
    notes = []
    for host, group in sorted(by_host.items()):
        chosen, note = choose_machine_reading(host, group)
        counted.append(chosen.energy_breakdown)
        notes += note
    if not counted:
        return None, notes
    methods = {b.baseline_method for b in counted}
    return EnergyBreakdown(
        raw_j=_sum_or_none([b.raw_j for b in counted]),
        adjusted_j=_sum_or_none([b.adjusted_j for b in counted]),
        baseline_power_w=_sum_or_none([b.baseline_power_w for b in counted]),
        baseline_method=(
            "unavailable"
            if "unavailable" in methods
            else "cached"
            if methods == {"cached"}
            else "fresh"
        ),
        inference_duration_s=max(b.inference_duration_s for b in counted),
    ), notes


def choose_machine_reading(
    host: str, group: list[RawProcessResult]
) -> tuple[RawProcessResult, list[str]]:
    """The one machine-level reading of a host: the one with the longest window.

    A note says which was taken when that window does not cover the span of the host's
    processes (they did not run together, or one started late).
    """
    chosen = max(group, key=lambda r: (r.inference_duration_s, -r.process_index))
    span_s = max(r.inference_end_unix_s for r in group) - min(
        r.inference_start_unix_s for r in group
    )
    if len(group) == 1 or chosen.inference_duration_s >= MACHINE_WINDOW_COVERAGE * span_s:
        return chosen, []
    others = ", ".join(str(r.process_index) for r in group if r is not chosen)
    return chosen, [
        f"host {host}: machine-level energy ({chosen.energy_method}) counted once, from "
        f"process {chosen.process_index}, whose window ({chosen.inference_duration_s:.2f} s) "
        f"covers {chosen.inference_duration_s / span_s:.0%} of the span of processes "
        f"{chosen.process_index}, {others} ({span_s:.2f} s); energy used outside it is "
        "not counted"
    ]


def combine_energy_method(results: list[RawProcessResult]) -> tuple[EnergyMethod, list[str]]:
    """One method when all agree; otherwise the weakest (an estimate wins) and a note."""
    methods = sorted({r.energy_method for r in results})
    if len(methods) == 1:
        return methods[0], []
    method = "estimate" if "estimate" in methods else results[0].energy_method
    return method, [f"processes measured energy by different methods ({', '.join(methods)})"]


def combine_throttle(results: list[RawProcessResult]) -> ThermalThrottleInfo:
    """OR of flags (None when no process observed them), longest duration, hottest."""
    infos = [r.thermal_throttle for r in results if r.thermal_throttle is not None]

    def any_of(name: str) -> bool | None:
        values = [getattr(i, name) for i in infos if getattr(i, name) is not None]
        return any(values) if values else None

    def max_of(name: str) -> float | None:
        values = [getattr(i, name) for i in infos if getattr(i, name) is not None]
        return max(values) if values else None

    flags = ("detected", "thermal", "power", "sw_thermal", "hw_thermal", "hw_power")
    return ThermalThrottleInfo(
        **{name: any_of(name) for name in flags},
        duration_s=max_of("duration_s"),
        max_temperature_c=max_of("max_temperature_c"),
    )


def combine_extended(results: list[RawProcessResult]) -> ExtendedMetrics:
    """Peaks are maxima, utilisation and batch size are means over processes."""
    ext = [r.extended for r in results if r.extended is not None]

    def values(name: str) -> list[float]:
        return [getattr(e, name) for e in ext if getattr(e, name) is not None]

    def peak(name: str) -> float | None:
        return max(values(name)) if values(name) else None

    def mean(name: str) -> float | None:
        return statistics.fmean(values(name)) if values(name) else None

    return ExtendedMetrics(
        peak_memory_mb=peak("peak_memory_mb"),
        process_rss_peak_mb=peak("process_rss_peak_mb"),
        cpu_util_mean_pct=mean("cpu_util_mean_pct"),
        gpu_util_mean_pct=mean("gpu_util_mean_pct"),
        gpu_mem_peak_mb=peak("gpu_mem_peak_mb"),
        batch_effective_size=mean("batch_effective_size"),
        kv_cache_hit_rate=mean("kv_cache_hit_rate"),
    )


def process_summary(r: RawProcessResult) -> ProcessSummary:
    """The per-process line of an aggregate."""
    return ProcessSummary(
        process_index=r.process_index,
        host=r.host,
        device_ids=[d.device_id for d in r.energy.devices] if r.energy else [],
        output_tokens=r.output_tokens,
        energy_j=r.energy_breakdown.raw_j if r.energy_breakdown else None,
        tokens_per_second=r.tokens_per_second,
        energy_scope=energy_scope(r),
    )


def energy_scope(result: RawProcessResult) -> EnergyScope | None:
    """`machine` for a host-level reading (RAPL, estimate), `device` otherwise; None: no energy."""
    if result.energy_breakdown is None:
        return None
    return "machine" if is_machine_level(result) else "device"


def _sum_or_none(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))
