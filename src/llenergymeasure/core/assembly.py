"""One process's result from what its window observed, the same for every engine.

Energy by component and boundary (`core/energy_accounting.py`), tokens and latencies
from the engine's request records, FLOPs, throttling, memory and utilisation from the
sampler's rows, and the warnings of every check.
"""

from __future__ import annotations

import os
import socket
import statistics
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from llenergymeasure.config.engines import ContinuousBatchingConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.baseline import Baselines
from llenergymeasure.core.device import on_gpu
from llenergymeasure.core.energy_accounting import account_energy
from llenergymeasure.core.energy_backends import EnergySources
from llenergymeasure.core.engines.base import Engine, EngineOutput, LoadedModel
from llenergymeasure.core.flops import BatchShape, estimate_flops
from llenergymeasure.core.host import host_identity
from llenergymeasure.core.load.summary import summarise_load
from llenergymeasure.core.measurement_warnings import (
    collect_measurement_warnings,
    host_contention_warning,
)
from llenergymeasure.core.power_integral import power_readings_per_device
from llenergymeasure.core.throttle import throttle_info_from_samples
from llenergymeasure.core.window import WindowResult
from llenergymeasure.domain.deployment import PaddingStats
from llenergymeasure.domain.energy import (
    BOUNDARY_COMPONENTS,
    ComponentEnergy,
    headline_boundary,
    weakest_method,
)
from llenergymeasure.domain.environment import EnvironmentMetadata
from llenergymeasure.domain.experiment import RawProcessResult, RequestRecord
from llenergymeasure.domain.load import LoadSummary
from llenergymeasure.domain.metrics import (
    EnergyMethod,
    ExtendedMetrics,
    LatencyStats,
    MeasurementWarning,
    WarmupResult,
)
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX

if TYPE_CHECKING:
    from llenergymeasure.core.lifecycle import RunContext


def assemble_result(
    *,
    engine: Engine,
    config: ExperimentConfig,
    ctx: RunContext,
    started_at: datetime,
    environment: EnvironmentMetadata,
    baselines: Baselines,
    warmup: WarmupResult,
    loaded: LoadedModel,
    window: WindowResult[EngineOutput],
    sources: EnergySources,
    extra_warnings: list[MeasurementWarning],
) -> RawProcessResult:
    """`process_<i>.json` of this process."""
    output = window.value
    requests = output.requests
    output_tokens = sum(r.output_tokens for r in requests)
    measurement = config.measurement
    interval_ms = measurement.energy.sample_interval_ms
    gpu = on_gpu(engine.device)
    account = account_energy(
        window.readings,
        baselines,
        window_s=window.window_s,
        window_start_unix_s=window.start_unix_s,
        output_tokens=output_tokens,
        gpus_expected=gpu,
        gpu_problem=sources.gpu_problem,
        config=measurement,
    )
    readings_per_device = power_readings_per_device(window.samples)
    warnings = collect_measurement_warnings(
        duration_s=window.window_s,
        power_readings=readings_per_device,
        readings=window.readings,
        energy_requested=measurement.energy.backend != "none",
        sampler_errors=window.sampler_errors,
        has_gpu=gpu,
        samples=window.samples,
        gpus=environment.gpus,
        power_integral_j=window.power_integral_j,
    )
    # Several workers on one host are each other's "others": their check belongs to
    # the aggregate, over the sum of their CPU time.
    if ctx.num_processes == 1:
        contention = host_contention_warning(
            window.cpu_time.process_cpu_s, window.cpu_time.host_busy_cpu_s
        )
        warnings += [contention] if contention is not None else []
    breakdown = account.breakdown
    load = load_summary(window, breakdown.raw_j, config)
    if load is not None:
        warnings += [
            MeasurementWarning(
                code="steady_window_short",
                message=message,
                remediation="send more requests (load.num_requests or load.duration_s), or "
                "sample faster (measurement.energy.sample_interval_ms)",
            )
            for message in load.steady_window.warnings
        ]
    return RawProcessResult(
        experiment_id=ctx.experiment_id,
        process_index=ctx.process_index,
        num_processes=ctx.num_processes,
        host=socket.gethostname(),
        host_id=host_identity(),
        pid=os.getpid(),
        config_name=config.name,
        model_name=config.model.name,
        model_source=loaded.source,
        engine=engine.name,
        dtype=loaded.dtype,
        device=engine.device,
        trust_remote_code=config.model.trust_remote_code,
        parallel=ctx.placement,
        quantization=loaded.quantization,
        model_memory_mb=loaded.memory_mb,
        started_at=started_at,
        ended_at=datetime.now(timezone.utc),
        inference_start_unix_s=window.start_unix_s,
        inference_end_unix_s=window.busy_end_unix_s,
        inference_duration_s=window.busy_s,
        energy_window_start_unix_s=window.start_unix_s,
        energy_window_end_unix_s=window.end_unix_s,
        energy_window_s=window.window_s,
        num_requests=len(requests),
        input_tokens=sum(r.input_tokens for r in requests),
        output_tokens=output_tokens,
        tokens_per_second=(
            output_tokens / window.busy_s if output_tokens and window.busy_s > 0 else None
        ),
        requests=requests,
        energy_method=headline_method(account.components, gpu),
        energy_readings=window.readings,
        energy_components=account.components,
        energy_boundaries=account.boundaries,
        energy_breakdown=breakdown,
        energy_per_output_token_j=(
            breakdown.raw_j / output_tokens
            if breakdown.raw_j is not None and output_tokens
            else None
        ),
        flops=estimate_flops(loaded.geometry, requests, output.shapes),
        latency=LatencyStats.from_samples(output.latency),
        latency_samples=output.latency,
        engine_latency_samples=output.engine_latency,
        warmup=warmup,
        thermal_throttle=throttle_info_from_samples(window.samples, interval_ms / 1000.0),
        environment=environment,
        extended=extended_metrics(window),
        sample_interval_ms=interval_ms,
        sample_count=min(readings_per_device.values()) if readings_per_device else None,
        padding=padding_stats(output.shapes, requests),
        deployment=output.deployment,
        warnings=account.warnings
        + warnings
        + output.warnings
        + extra_warnings
        + fallback_warnings(output),
        load=load,
        load_requests=output.load_run.requests if output.load_run is not None else [],
    )


def load_summary(
    window: WindowResult[EngineOutput], energy_j: float | None, config: ExperimentConfig
) -> LoadSummary | None:
    """The load run's summary over the energy window (the headline's raw energy), if any.

    The steady window's share of the energy follows the GPU's power samples where one GPU
    was sampled; otherwise (the CPU, or several GPUs) it is shared out by time.
    """
    run = window.value.load_run
    if run is None:
        return None
    start_s = window.start_mono_s - run.start_monotonic_s
    gpu_rows = [
        s for s in window.samples if s.device_index != CPU_DEVICE_INDEX and s.power_w is not None
    ]
    one_gpu = len({s.device_index for s in gpu_rows}) == 1
    return summarise_load(
        run,
        energy_j=energy_j,
        energy_window=(start_s, start_s + window.window_s),
        samples=[(s.t_s - run.start_monotonic_s, s.power_w) for s in gpu_rows] if one_gpu else [],
        sample_interval_s=config.measurement.energy.sample_interval_ms / 1000.0,
        max_batch=running_batch_limit(config),
        slo=config.load.slo,
        steps=window.value.steps,
    )


def running_batch_limit(config: ExperimentConfig) -> int | None:
    """The most requests the engine runs together; None for an endpoint (its server's)."""
    if config.load.endpoint is not None:
        return None
    if config.engine == "vllm":
        return config.vllm_options().max_num_seqs
    return (config.transformers_cb or ContinuousBatchingConfig()).max_requests_per_batch


def extended_metrics(window: WindowResult[EngineOutput]) -> ExtendedMetrics:
    """Memory and utilisation over the window from the sampler's CPU and GPU rows."""
    cpu_rows = [s for s in window.samples if s.device_index == CPU_DEVICE_INDEX]
    gpu_rows = [s for s in window.samples if s.device_index != CPU_DEVICE_INDEX]
    rss = [s.memory_used_mb for s in cpu_rows if s.memory_used_mb is not None]
    util = [s.cpu_util_pct for s in cpu_rows if s.cpu_util_pct is not None]
    gpu_util = [s.sm_utilisation_pct for s in gpu_rows if s.sm_utilisation_pct is not None]
    gpu_mem = [s.memory_used_mb for s in gpu_rows if s.memory_used_mb is not None]
    sizes = window.value.batch_sizes
    return ExtendedMetrics(
        peak_memory_mb=window.value.peak_memory_mb,
        process_rss_peak_mb=max(rss) if rss else None,
        cpu_util_mean_pct=statistics.fmean(util) if util else None,
        gpu_util_mean_pct=statistics.fmean(gpu_util) if gpu_util else None,
        gpu_mem_peak_mb=max(gpu_mem) if gpu_mem else None,
        batch_effective_size=statistics.fmean(sizes) if sizes else None,
        process_cpu_s=window.cpu_time.process_cpu_s,
        host_busy_cpu_s=window.cpu_time.host_busy_cpu_s,
    )


def padding_stats(shapes: list[BatchShape], requests: list[RequestRecord]) -> PaddingStats:
    """The window's padded and real positions, from the batches it ran and their requests."""
    return PaddingStats(
        prompt_real_tokens=sum(r.input_tokens for r in requests),
        prompt_positions=sum(s.rows * s.padded_prompt_tokens for s in shapes),
        output_real_tokens=sum(r.output_tokens for r in requests),
        output_positions=sum(s.rows * s.steps for s in shapes),
    )


def fallback_warnings(output: EngineOutput) -> list[MeasurementWarning]:
    """One `deployment_fallback` warning per knob the engine did not honour as asked."""
    if output.deployment is None:
        return []
    return [
        MeasurementWarning(
            code="deployment_fallback",
            message=fallback,
            remediation="check that the library, model and device support the knob",
        )
        for fallback in output.deployment.fallbacks()
    ]


def headline_method(components: list[ComponentEnergy], gpu: bool) -> EnergyMethod:
    """The weakest method among the headline boundary's components."""
    wanted = BOUNDARY_COMPONENTS[headline_boundary(gpu)]
    methods = [c.method for c in components if c.component in wanted]
    return weakest_method(methods) if methods else "none"
