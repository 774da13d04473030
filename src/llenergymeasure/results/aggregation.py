"""Combine the processes of an experiment into one result, refusing what does not add up.

Completeness -> temporal overlap -> GPU attribution (`verification`) -> sums. What is
summed, averaged or pooled, and why:
- energy, per component: device-level components (each GPU owned by one process) are
  summed; a machine-level component (CPU packages, DRAM: RAPL or the estimate) covers
  every process of its host (`host_id`, the kernel it ran on; the hostname for schema 1
  results), so each host counts one: the
  reading whose window is the longest, which covers the others' when they ran together
  (a warning says which was taken when it does not). Boundaries and the headline follow
  from the summed components (`combine_energy`);
- tokens, requests, FLOPs, latency samples: summed (or pooled) over one process per data
  group (`parallel_groups.counting_processes`): groups ran disjoint shards, and the ranks of a
  tensor-parallel group ran the same requests together, so a group counts once; FLOPs
  unknown in one process are unknown in total;
- throughput: the mean of per-process tokens/s, and all tokens over the wall window
  (first start to last end);
- latency: percentiles of the pooled per-request samples, never averaged percentiles;
- throttling: OR of the flags, the longest duration, the highest temperature;
- padding: padded and real positions summed, the shares recomputed from the sums;
- deployment: the first process's record (every process ran the same config); each
  process's fallback warnings are merged with the others;
- environment: one per host;
- phase subtraction (`measurement.phase_split`): each process's prefill pass and main
  window summed, as its headline energy is, where the processes measured separate
  energy (their own GPUs, or one process per host for machine-level energy); None with
  a note where processes share a machine-level reading (`combine_phase_subtraction`).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure.domain.deployment import PaddingStats, ParallelShape, QuantizationRecord
from llenergymeasure.domain.experiment import (
    AggregatedResult,
    AggregationInfo,
    ExperimentManifest,
    ProcessSummary,
    RawProcessResult,
)
from llenergymeasure.domain.metrics import (
    ExtendedMetrics,
    LatencyStats,
    MeasurementWarning,
    ThermalThrottleInfo,
)
from llenergymeasure.errors import IncompleteExperiment, UnverifiedExperiment
from llenergymeasure.results.energy_combination import (
    combine_energy,
    combine_energy_method,
    combine_phase_subtraction,
    energy_scope,
)
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model, write_model
from llenergymeasure.results.parallel_groups import counting_processes, data_groups, group_key
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
    counted = counting_processes(results)
    counted_indices = {r.process_index for r in counted}
    start = min(r.inference_start_unix_s for r in results)
    end = max(r.inference_end_unix_s for r in results)
    wall_s = end - start
    output_tokens = sum(r.output_tokens for r in counted)
    components, boundaries, breakdown, energy_notes = combine_energy(results, manifest)
    phase, phase_notes = combine_phase_subtraction(results)
    energy_method, method_notes = combine_energy_method(results)
    rates = [r.tokens_per_second for r in counted if r.tokens_per_second is not None]
    flops = [r.flops for r in counted]
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
            parallel_groups_verified=verification.parallel_groups_verified,
            warnings=[
                *completeness.problems,
                *verification.problems,
                *energy_notes,
                *method_notes,
                *phase_notes,
            ],
        ),
        hosts=sorted({r.host for r in results}),
        parallel=parallel_shape(first),
        quantization=quantization_record(results),
        model_memory_mb=model_memory_mb(results),
        inference_start_unix_s=start,
        inference_end_unix_s=end,
        wall_window_s=wall_s,
        num_requests=sum(r.num_requests for r in counted),
        input_tokens=sum(r.input_tokens for r in counted),
        output_tokens=output_tokens,
        avg_tokens_per_second=statistics.fmean(rates) if rates else None,
        total_tokens_per_second=output_tokens / wall_s if wall_s > 0 else None,
        energy_method=energy_method,
        energy_components=components,
        energy_boundaries=boundaries,
        energy_breakdown=breakdown,
        energy_per_output_token_j=(
            breakdown.raw_j / output_tokens
            if breakdown is not None and breakdown.raw_j is not None and output_tokens
            else None
        ),
        total_flops=sum_flops([f.total_flops if f else None for f in flops]),
        flops_useful=sum_flops([f.flops_useful if f else None for f in flops]),
        flops_executed=sum_flops([f.flops_executed if f else None for f in flops]),
        flops_method=first.flops.method if first.flops else None,
        latency=LatencyStats.pooled([r.latency_samples for r in counted if r.latency_samples]),
        thermal_throttle=combine_throttle(results),
        environments={r.host: r.environment for r in reversed(results) if r.environment},
        extended=combine_extended(results),
        processes=[process_summary(r, r.process_index in counted_indices) for r in results],
        padding=PaddingStats.combine([r.padding for r in results]),
        deployment=first.deployment,
        timeseries_paths=[r.timeseries_path for r in results if r.timeseries_path],
        warnings=merge_warnings(results),
        # Load modes run in one process (config), so its summary is the experiment's.
        load=first.load if len(results) == 1 else None,
        phase_subtraction=phase,
        created_at=manifest.created_at,
        aggregated_at=datetime.now(timezone.utc),
    )


def parallel_shape(result: RawProcessResult) -> ParallelShape | None:
    """The experiment's parallel layout, as its processes recorded it; None in older files."""
    if result.parallel is None:
        return None
    return ParallelShape(
        data_groups=result.parallel.data_groups,
        tensor_size=result.parallel.tensor_size,
        pipeline_size=result.parallel.pipeline_size,
    )


def model_memory_mb(results: list[RawProcessResult]) -> float | None:
    """One copy of the model as stored: the sum over the ranks of the first data group.

    Each rank of a tensor-parallel group holds its shard of the split layers and a copy of
    the rest (norms, embeddings the plan leaves whole), so their sum is what the group
    stores; other data groups hold copies of it. None when a rank of that group could not tell.
    """
    sizes = [r.model_memory_mb for r in data_groups(results)[group_key(results[0])]]
    return None if any(s is None for s in sizes) else float(sum(sizes))  # type: ignore[arg-type]


def quantization_record(results: list[RawProcessResult]) -> QuantizationRecord | None:
    """The first process's record, its memory before quantization summed as `model_memory_mb`.

    Under tensor parallelism each rank quantized its shard of the same weight tensors: the
    tensors are counted once, their memory adds up over the group's ranks.
    """
    first = results[0].quantization
    if first is None:
        return None
    group = data_groups(results)[group_key(results[0])]
    before = [r.quantization.unquantized_memory_mb if r.quantization else None for r in group]
    total = None if any(b is None for b in before) else float(sum(before))  # type: ignore[arg-type]
    return first.model_copy(update={"unquantized_memory_mb": total})


def sum_flops(values: list[float | None]) -> float | None:
    """The sum; None when any process's FLOPs are unknown (a partial sum is no total)."""
    return None if any(v is None for v in values) else float(sum(values))


def merge_warnings(results: list[RawProcessResult]) -> list[MeasurementWarning]:
    """One warning per (code, message), naming every process that gave it, in first-seen order."""
    merged: dict[tuple[str, str], tuple[MeasurementWarning, list[int]]] = {}
    for r in results:
        for w in r.warnings:
            _, indices = merged.setdefault((w.code, w.message), (w, []))
            if r.process_index not in indices:
                indices.append(r.process_index)
    return [w.model_copy(update={"processes": sorted(i)}) for w, i in merged.values()]


def combine_throttle(results: list[RawProcessResult]) -> ThermalThrottleInfo:
    """OR of flags (None when no process observed them), longest durations, hottest.

    Every process's window is the same common window, so a duration is the maximum over
    processes, never a sum.
    """
    infos = [r.thermal_throttle for r in results if r.thermal_throttle is not None]

    def any_of(name: str) -> bool | None:
        values = [getattr(i, name) for i in infos if getattr(i, name) is not None]
        return any(values) if values else None

    def max_of(name: str) -> float | None:
        values = [getattr(i, name) for i in infos if getattr(i, name) is not None]
        return max(values) if values else None

    flags = (
        "detected",
        "thermal",
        "power",
        "hw_slowdown",
        "sw_thermal",
        "hw_thermal",
        "sw_power_cap",
        "hw_power",
    )
    maxima = (
        "duration_s",
        "thermal_duration_s",
        "power_cap_duration_s",
        "hw_slowdown_duration_s",
        "max_temperature_c",
    )
    return ThermalThrottleInfo(
        **{name: any_of(name) for name in flags}, **{name: max_of(name) for name in maxima}
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


def process_summary(r: RawProcessResult, counts_requests: bool = True) -> ProcessSummary:
    """The per-process line of an aggregate; `counts_requests`: its tokens are counted."""
    return ProcessSummary(
        process_index=r.process_index,
        host=r.host,
        device_ids=[d.device_id for d in r.devices],
        data_group=r.parallel.data_group if r.parallel else None,
        counts_requests=counts_requests,
        output_tokens=r.output_tokens,
        energy_j=r.energy_breakdown.raw_j if r.energy_breakdown else None,
        tokens_per_second=r.tokens_per_second,
        energy_scope=energy_scope(r),
    )
