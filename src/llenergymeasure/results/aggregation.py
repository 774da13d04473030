"""Combine the processes of an experiment into one result, refusing what does not add up.

Completeness (manifest count, markers, hashes) -> temporal overlap -> GPU attribution ->
sums. What is summed, averaged or pooled, and why:
- energy: device-level readings (one GPU per process) are summed; machine-level ones
  (RAPL, CPU estimate) cover every process of a host, so they are counted once per
  host, from that host's first process;
- tokens, requests, FLOPs: summed (each process ran a disjoint shard);
- throughput: the mean of per-process tokens/s, and all tokens over the wall window;
- latency: percentiles of the pooled per-request samples, never averaged percentiles;
- throttling: OR of the flags, the longest duration, the highest temperature.
"""

from __future__ import annotations

import hashlib
import statistics
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure.domain.experiment import (
    AggregatedResult,
    AggregationInfo,
    CompletionMarker,
    ExperimentManifest,
    ProcessSummary,
    RawProcessResult,
)
from llenergymeasure.domain.metrics import (
    EnergyBreakdown,
    ExtendedMetrics,
    LatencySamples,
    LatencyStats,
    ThermalThrottleInfo,
)
from llenergymeasure.errors import IncompleteExperiment, ResultsError
from llenergymeasure.results.layout import (
    ResultsLayout,
    manifest_path,
    marker_path,
    process_result_path,
    read_model,
    write_model,
)

METHOD = "sum_device_energy_once_per_host_machine_energy"
OVERLAP_FRACTION = 0.5


def aggregate_experiment(
    layout: ResultsLayout, experiment_id: str, *, allow_partial: bool = False
) -> tuple[AggregatedResult, Path]:
    """Aggregate `raw/<id>` and write `aggregated/<id>.json`.

    Raises:
        IncompleteExperiment: a process is missing or unverifiable and not allow_partial.

    """
    experiment_dir = layout.experiment_dir(experiment_id)
    manifest = read_model(manifest_path(experiment_dir), ExperimentManifest)
    results, problems = load_complete_processes(experiment_dir, manifest.expected_num_processes)
    if problems and not allow_partial:
        raise IncompleteExperiment(
            f"{experiment_dir}: incomplete: {'; '.join(describe(problems))} "
            "(rerun, or aggregate with --allow-partial)"
        )
    if not results:
        raise IncompleteExperiment(f"{experiment_dir}: no complete process result to aggregate")
    aggregated = aggregate_results(manifest, results, problems)
    path = layout.aggregated_path(experiment_id)
    write_model(path, aggregated)
    return aggregated, path


def load_complete_processes(
    experiment_dir: Path, expected: int
) -> tuple[list[RawProcessResult], dict[int, str]]:
    """Results whose marker exists and whose hash matches; and what is wrong with the rest."""
    results, problems = [], {}
    for index in range(expected):
        try:
            results.append(verified_process_result(experiment_dir, index))
        except ResultsError as exc:
            problems[index] = str(exc)
    return results, problems


def describe(problems: dict[int, str]) -> list[str]:
    """One phrase per unusable process."""
    return [f"process {index}: {problem}" for index, problem in sorted(problems.items())]


def verified_process_result(experiment_dir: Path, index: int) -> RawProcessResult:
    """Load `process_<i>.json` after checking its marker's hash."""
    marker_file = marker_path(experiment_dir, index)
    result_file = process_result_path(experiment_dir, index)
    if not marker_file.exists():
        raise ResultsError(f"no completion marker {marker_file.name}")
    marker = read_model(marker_file, CompletionMarker)
    try:
        data = result_file.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{result_file.name} missing although marked complete") from None
    if hashlib.sha256(data).hexdigest() != marker.result_sha256:
        raise ResultsError(f"{result_file.name} does not match the hash in {marker_file.name}")
    result = read_model(result_file, RawProcessResult)
    if result.process_index != index:
        raise ResultsError(f"{result_file.name} holds process_index {result.process_index}")
    return result


def aggregate_results(
    manifest: ExperimentManifest, results: list[RawProcessResult], problems: dict[int, str]
) -> AggregatedResult:
    """Pure combination of verified process results."""
    results = sorted(results, key=lambda r: r.process_index)
    first = results[0]
    start = min(r.inference_start_unix_s for r in results)
    end = max(r.inference_end_unix_s for r in results)
    wall_s = end - start
    output_tokens = sum(r.output_tokens for r in results)
    overlap_ok, overlap_warnings = check_temporal_overlap(results)
    attribution_ok, attribution_warnings = check_gpu_attribution(results)
    breakdown = combine_energy(results)
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
            partial=bool(problems),
            missing_processes=sorted(problems),
            temporal_overlap_verified=overlap_ok,
            gpu_attribution_verified=attribution_ok,
            warnings=[*describe(problems), *overlap_warnings, *attribution_warnings],
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
        energy_method=first.energy_method,
        energy_breakdown=breakdown,
        energy_per_output_token_j=(
            breakdown.raw_j / output_tokens
            if breakdown is not None and breakdown.raw_j is not None and output_tokens
            else None
        ),
        total_flops=None if any(f is None for f in flops) else float(sum(flops)),
        flops_method=first.flops.method if first.flops else None,
        latency=LatencyStats.from_samples(
            LatencySamples.concat([r.latency_samples for r in results if r.latency_samples])
        ),
        thermal_throttle=combine_throttle(results),
        environments={r.host: r.environment for r in reversed(results) if r.environment},
        extended=combine_extended(results),
        processes=[process_summary(r) for r in results],
        timeseries_paths=[r.timeseries_path for r in results if r.timeseries_path],
        warnings=list({(w.code, w.message): w for r in results for w in r.warnings}.values()),
        created_at=datetime.now(timezone.utc),
    )


def check_temporal_overlap(results: list[RawProcessResult]) -> tuple[bool, list[str]]:
    """Windows overlap by at least half of the shortest one (wall-clock, across hosts)."""
    if len(results) < 2:
        return True, []
    overlap = min(r.inference_end_unix_s for r in results) - max(
        r.inference_start_unix_s for r in results
    )
    shortest = min(r.inference_duration_s for r in results)
    if overlap >= OVERLAP_FRACTION * shortest:
        return True, []
    return False, [
        f"inference windows overlap by {max(overlap, 0.0):.2f} s, under half of the "
        f"shortest window ({shortest:.2f} s): the processes did not run together"
    ]


def check_gpu_attribution(results: list[RawProcessResult]) -> tuple[bool, list[str]]:
    """No (host, device) with device-level energy is claimed by two processes."""
    owners: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in results:
        for device in r.energy.devices if r.energy else []:
            if device.scope == "device":
                owners[(r.host, device.device_id)].append(r.process_index)
    clashes = [
        f"device {dev} on {host} claimed by processes {procs}"
        for (host, dev), procs in owners.items()
        if len(procs) > 1
    ]
    return not clashes, clashes


def combine_energy(results: list[RawProcessResult]) -> EnergyBreakdown | None:
    """Sum breakdowns of device-level processes; one per host for machine-level ones."""
    counted = []
    seen_machine_hosts = set()
    for r in results:
        if r.energy_breakdown is None:
            continue
        machine_level = r.energy is not None and all(d.scope == "machine" for d in r.energy.devices)
        if machine_level:
            if r.host in seen_machine_hosts:
                continue
            seen_machine_hosts.add(r.host)
        counted.append(r.energy_breakdown)
    if not counted:
        return None
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
    )


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
    )


def _sum_or_none(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))
