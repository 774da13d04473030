"""One process's result from what its window observed, the same for every engine.

Energy, throttling, the sampler's resource rows and the measurement's checks come from
the window (`core/window_summary.py`, shared with the Python API); tokens, latencies,
FLOPs and the engine's own memory from the engine's request records and output.
"""

from __future__ import annotations

import os
import socket
import statistics
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.baseline import Baselines
from llenergymeasure.core.device import on_gpu
from llenergymeasure.core.energy_backends import EnergySources
from llenergymeasure.core.engines.base import Engine, EngineOutput, LoadedModel
from llenergymeasure.core.flops import BatchShape, estimate_flops
from llenergymeasure.core.host import host_identity
from llenergymeasure.core.load.summary import summarise_load
from llenergymeasure.core.window import WindowResult
from llenergymeasure.core.window_summary import summarise_window
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
    summary = summarise_window(
        window,
        baselines=baselines,
        sources=sources,
        config=measurement,
        has_gpu=gpu,
        gpus=environment.gpus,
        output_tokens=output_tokens,
        # Several workers on one host are each other's "others": a multi-process run
        # records the CPU figures (extended) without flagging each process.
        check_contention=ctx.num_processes == 1,
    )
    account, warnings = summary.account, summary.warnings
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
        thermal_throttle=summary.thermal_throttle,
        environment=environment,
        extended=summary.extended.model_copy(
            update={
                "peak_memory_mb": output.peak_memory_mb,
                "batch_effective_size": (
                    statistics.fmean(output.batch_sizes) if output.batch_sizes else None
                ),
            }
        ),
        sample_interval_ms=interval_ms,
        sample_count=summary.sample_count,
        padding=padding_stats(output.shapes, requests),
        deployment=output.deployment,
        warnings=warnings + output.warnings + extra_warnings + fallback_warnings(output),
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
        max_batch=config.running_batch_limit(),
        slo=config.load.slo,
        steps=window.value.steps,
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
