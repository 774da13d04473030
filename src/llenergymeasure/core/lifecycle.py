"""The measured lifecycle, written once for every engine (docs/design.md section 1).

environment -> idle baseline per component (before the model is loaded) -> the window
created, its sampling process forked while this process is still small -> load ->
encode -> warmup until converged -> thermal floor -> barrier -> the measurement window
(`core/window.py`: sampler + energy start, the engine runs this process's prompts,
sync, wait for every process, energy + sampler stop) -> with `measurement.phase_split:
subtraction`, a second window over the same prompts with one output token each
(`core/phase_split.py`) -> the result (`core/assembly.py`).
Writing files is the worker's job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.assembly import assemble_result
from llenergymeasure.core.baseline import Baselines, measure_baselines
from llenergymeasure.core.device import on_gpu
from llenergymeasure.core.energy_backends import EnergySources, select_energy_backends
from llenergymeasure.core.energy_backends.nvml import NvmlSampleSource
from llenergymeasure.core.engines.base import Engine, EngineOutput, LoadedModel, Workload
from llenergymeasure.core.environment import collect_environment
from llenergymeasure.core.live_telemetry import TelemetryFn, live_telemetry
from llenergymeasure.core.phase_split import one_output_token, phase_subtraction, wants_prefill_pass
from llenergymeasure.core.thermal_floor import ThermalFloorOutcome, apply_thermal_floor
from llenergymeasure.core.warmup import warmup_until_converged
from llenergymeasure.core.window import MeasurementWindow, WindowResult, window_sample_sources
from llenergymeasure.domain.deployment import ParallelPlacement
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.domain.metrics import MeasurementWarning, WarmupResult
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.log import logger
from llenergymeasure.prompts import Prompt

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunContext:
    """Where this process stands in the experiment, and who hears of its progress.

    `telemetry` receives the energy window's live figures about once a second
    (`core/live_telemetry.py`); None gathers none.

    `group_max` gives the maximum of a value over this process's tensor-parallel group
    (a collective call every rank of the group makes); None outside such a group.
    """

    experiment_id: str
    process_index: int = 0
    num_processes: int = 1
    barrier: Callable[[], None] = lambda: None
    progress: ProgressFn | None = None
    baseline_cache_path: Path | None = None
    telemetry: TelemetryFn | None = None
    placement: ParallelPlacement | None = None
    group_max: Callable[[float], float] | None = None

    def report(self, phase: str, done: int, total: int) -> None:
        """Tell the launcher how far this process is (when it listens)."""
        if self.progress is not None:
            self.progress(phase, done, total)


@dataclass
class MeasuredRun:
    """The result of one process plus the raw samples for its sidecar."""

    result: RawProcessResult
    samples: list[PowerThermalSample]
    window_start_mono_s: float


def run_measured(
    engine: Engine, config: ExperimentConfig, ctx: RunContext, prompts: list[Prompt]
) -> MeasuredRun:
    """The measured lifecycle of one process over `prompts` (its shard)."""
    started_at = datetime.now(timezone.utc)
    sources = select_energy_backends(config.measurement.energy, engine.cuda_ordinals)
    gpu_source = None
    windows: list[MeasurementWindow | None] = []
    try:
        environment = collect_environment(engine.cuda_ordinals, sources.gpus)
        baselines = measure_idle_baselines(sources, config, ctx)
        gpu_source = sources.gpu_sample_source()
        measurement_window = open_window(engine, sources, gpu_source, config)
        prefill_window = open_prefill_window(engine, sources, gpu_source, config)
        windows += [measurement_window, prefill_window]
        loaded = load_model(engine, ctx)
        workload = engine.prepare(prompts, prompt_budget(loaded, config))
        seed_everything(config.seed)
        warmup = warm_up(engine, workload, config, ctx)
        floor = apply_thermal_floor(
            config.measurement.thermal_floor,
            _temperature_reader(gpu_source),
            on_gpu=on_gpu(engine.device),
            progress=ctx.progress,
        )
        ctx.barrier()
        warmup = record_window_start(warmup, floor, gpu_source)
        # Again, so that the window's sampling does not depend on how long warmup ran.
        seed_everything(config.seed)
        window = measure_window(engine, workload, measurement_window, ctx)
        prefill, prefill_lost = measure_prefill_pass(engine, workload, prefill_window, ctx, config)
    finally:
        try:
            for unused in filter(None, windows):
                unused.close()  # a window that never ran still has its sampling process
            sources.close()
        finally:
            engine.close()
    result = assemble_result(
        engine=engine,
        config=config,
        ctx=ctx,
        started_at=started_at,
        environment=environment,
        baselines=baselines,
        warmup=warmup,
        loaded=loaded,
        window=window,
        sources=sources,
        extra_warnings=lifecycle_warnings(floor, workload, loaded, config) + prefill_lost,
    )
    if prefill is not None:
        record = phase_subtraction(result, prefill, baselines, sources, config)
        result = result.model_copy(update={"phase_subtraction": record})
    return MeasuredRun(result, window.samples, window.start_mono_s)


def measure_idle_baselines(
    sources: EnergySources, config: ExperimentConfig, ctx: RunContext
) -> Baselines:
    """Every process together: a host's idle power must not include a sibling's model load."""
    ctx.report("baseline", 0, 1)
    ctx.barrier()
    baselines = measure_baselines(
        sources.backends, config.measurement.baseline, ctx.baseline_cache_path
    )
    ctx.barrier()
    ctx.report("baseline", 1, 1)
    return baselines


def load_model(engine: Engine, ctx: RunContext) -> LoadedModel:
    """Load the engine's model, reporting the phase."""
    ctx.report("loading model", 0, 1)
    loaded = engine.load()
    ctx.report("loading model", 1, 1)
    return loaded


def prompt_budget(loaded: LoadedModel, config: ExperimentConfig) -> int | None:
    """With `prompts.truncate`, the prompt tokens that leave room for the longest generation."""
    if not config.prompts.truncate or loaded.context_tokens is None:
        return None
    longest = max(config.generation.max_new_tokens, config.measurement.warmup.max_new_tokens)
    return max(1, loaded.context_tokens - longest)


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, numpy and torch (every CUDA device too) with `seed`.

    With `do_sample: true`, the same seed gives the same tokens for the same prompts,
    batches and device.
    """
    from transformers import set_seed

    set_seed(seed)


def warm_up(
    engine: Engine, workload: Workload, config: ExperimentConfig, ctx: RunContext
) -> WarmupResult:
    """Repeat the engine's warmup step until its latency is stable (`core/warmup.py`)."""
    settings = config.measurement.warmup
    step = engine.warmup_step(workload, settings.max_new_tokens)
    if step is None:  # this process has no prompts: nothing to warm up
        return warmup_until_converged(lambda: 0.0, settings.model_copy(update={"enabled": False}))
    if ctx.group_max is not None:
        step = group_latency(step, ctx.group_max)
    return warmup_until_converged(step, settings, ctx.progress)


def group_latency(
    step: Callable[[], float], group_max: Callable[[float], float]
) -> Callable[[], float]:
    """A warmup step whose latency is its tensor-parallel group's (the slowest rank's).

    Every `generate` of a group is one collective computation, so its ranks must stop
    warming up after the same iteration: given the same latencies, each reaches the same
    verdict, where ranks judging their own would diverge and leave one waiting in a
    collective the others never join.
    """
    return lambda: group_max(step())


def record_window_start(
    warmup: WarmupResult, floor: ThermalFloorOutcome, gpu_source: NvmlSampleSource | None
) -> WarmupResult:
    """The thermal floor's figures and each GPU's temperature as the window opens."""
    return warmup.model_copy(
        update={
            **floor.warmup_fields(),
            "window_start_temperature_c": (
                gpu_source.temperatures_c() if gpu_source is not None else None
            ),
        }
    )


def open_window(
    engine: Engine,
    sources: EnergySources,
    gpu_source: NvmlSampleSource | None,
    config: ExperimentConfig,
) -> MeasurementWindow:
    """The window, created before the model loads: its sampling process is forked now.

    Forked from a process without the model, the child shares little memory with it, so
    the pages the inference writes are not copied on write during the window (a child
    forked with the model loaded costs a few thousand page faults per window).
    """
    return MeasurementWindow(
        sources.backends,
        window_sample_sources(gpu_source),
        config.measurement.energy.sample_interval_ms,
        engine.synchronize,
    )


def open_prefill_window(
    engine: Engine,
    sources: EnergySources,
    gpu_source: NvmlSampleSource | None,
    config: ExperimentConfig,
) -> MeasurementWindow | None:
    """The prefill pass's window, forked now as the main one; None unless asked for."""
    if not wants_prefill_pass(config):
        return None
    return open_window(engine, sources, gpu_source, config)


def measure_window(
    engine: Engine, workload: Workload, window: MeasurementWindow, ctx: RunContext
) -> WindowResult[EngineOutput]:
    """The energy window: this process's workload, then the wait for the others."""
    # vLLM's engine core and workers exist once the model is loaded: their CPU time is ours.
    window.count_as_own(engine.helper_pids())
    total = workload.expected_requests or len(workload.prompts)
    ctx.report("inference", 0, total)
    # A tensor-parallel group's tokens are its rank 0's: its other ranks report energy only.
    counts_tokens = ctx.placement is None or ctx.placement.counts_requests
    with live_telemetry(window, ctx.telemetry, window.backends) as live:

        def requests_done(done: int, output_tokens: int | None = None) -> None:
            ctx.report("inference", done, total)
            if live is not None and output_tokens is not None and counts_tokens:
                live.set_output_tokens(output_tokens)

        return window.run(lambda: engine.run(workload, requests_done), wait_for_all=ctx.barrier)


def measure_prefill_pass(
    engine: Engine,
    workload: Workload,
    window: MeasurementWindow | None,
    ctx: RunContext,
    config: ExperimentConfig,
) -> tuple[WindowResult[EngineOutput] | None, list[MeasurementWarning]]:
    """The subtraction method's second window: the workload with one output token each.

    Outside the main window, after it; seeded again so that sampling draws the same first
    tokens. None without the window (`measurement.phase_split: none`), and None with a
    warning where the pass failed: the main window's result stands without the split.
    """
    if window is None:
        return None, []
    window.count_as_own(engine.helper_pids())
    total = workload.expected_requests or len(workload.prompts)
    ctx.report("prefill pass", 0, total)
    seed_everything(config.seed)
    with one_output_token(engine):

        def requests_done(done: int, output_tokens: int | None = None) -> None:
            ctx.report("prefill pass", done, total)

        try:
            run = window.run(lambda: engine.run(workload, requests_done), wait_for_all=ctx.barrier)
        except Exception as e:  # the main window is measured: keep it, say what is missing
            logger.warning(f"prefill pass failed: {type(e).__name__}: {e}")
            return None, [
                MeasurementWarning(
                    code="phase_split_failed",
                    message=f"the prefill pass of measurement.phase_split failed "
                    f"({type(e).__name__}: {e}); no phase_subtraction record",
                    remediation="run again, or set measurement.phase_split: none",
                )
            ]
    return run, []


def lifecycle_warnings(
    floor: ThermalFloorOutcome, workload: Workload, loaded: LoadedModel, config: ExperimentConfig
) -> list[MeasurementWarning]:
    """Warnings of the steps before the window.

    The thermal floor's, prompts truncated, a quantization that quantized nothing.
    """
    warnings = [floor.warning] if floor.warning is not None else []
    if loaded.quantization is not None and loaded.quantization.quantized_weights == 0:
        warnings.append(
            MeasurementWarning(
                code="quantization_not_applied",
                message=f"model.quantization {loaded.quantization.method} "
                f"{loaded.quantization.bits}-bit left every weight unquantized",
                remediation="check that the method supports this model's layers",
            )
        )
    if workload.truncated:
        budget = prompt_budget(loaded, config)
        warnings.append(
            MeasurementWarning(
                code="prompts_truncated",
                message=f"{workload.truncated} prompt(s) longer than {budget} tokens (the "
                "model's context less max_new_tokens) lost their start (prompts.truncate: true)",
                remediation="shorten the prompts, or use a model with a longer context",
            )
        )
    return warnings


def _temperature_reader(
    gpu_source: NvmlSampleSource | None,
) -> Callable[[], list[float | None]] | None:
    """Reads every GPU's temperature through the run's NVML source; None without one."""
    if gpu_source is None:
        return None
    return lambda: list(gpu_source.temperatures_c().values())
