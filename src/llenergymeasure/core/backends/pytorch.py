"""The measured lifecycle on PyTorch + transformers (docs/design.md section 1).

environment -> baseline per component (before the model is loaded) -> load -> warmup
until converged -> thermal floor -> barrier -> the measurement window (`core/window.py`:
sampler + energy start, inference over this process's prompts, sync, wait for every
process, energy + sampler stop) -> components and boundaries, FLOPs, throttling,
warnings. Writing files is the worker's job.
"""

from __future__ import annotations

import os
import socket
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from loguru import logger

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.backends.generation import (
    BatchOutput,
    build_generation_config,
    encode_batches,
    generate_batch,
)
from llenergymeasure.core.baseline import Baselines, measure_baselines
from llenergymeasure.core.energy_accounting import account_energy
from llenergymeasure.core.energy_backends import EnergySources, select_energy_backends
from llenergymeasure.core.energy_backends.nvml import NvmlSampleSource, open_gpu_sample_source
from llenergymeasure.core.environment import collect_environment
from llenergymeasure.core.flops import estimate_flops, model_geometry
from llenergymeasure.core.host import host_identity
from llenergymeasure.core.measurement_warnings import (
    collect_measurement_warnings,
    host_contention_warning,
)
from llenergymeasure.core.power_thermal import (
    CPU_DEVICE_INDEX,
    CpuSampleSource,
    PowerThermalSample,
    SampleSource,
    power_integral_j,
    power_readings_per_device,
)
from llenergymeasure.core.thermal_floor import apply_thermal_floor
from llenergymeasure.core.throttle import throttle_info_from_samples
from llenergymeasure.core.warmup import (
    create_warmup_inference_fn,
    warmup_until_converged,
)
from llenergymeasure.core.window import MeasurementWindow, WindowResult
from llenergymeasure.domain.energy import (
    BOUNDARY_COMPONENTS,
    ComponentEnergy,
    headline_boundary,
    weakest_method,
)
from llenergymeasure.domain.environment import EnvironmentMetadata
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.domain.metrics import (
    EnergyMethod,
    ExtendedMetrics,
    LatencySamples,
    LatencyStats,
    MeasurementWarning,
    WarmupResult,
)
from llenergymeasure.models import resolve_model
from llenergymeasure.prompts import Prompt

ProgressFn = Callable[[str, int, int], None]
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class RunContext:
    """Where this process stands in the experiment."""

    experiment_id: str
    process_index: int = 0
    num_processes: int = 1
    device: str = "cpu"
    barrier: Callable[[], None] = lambda: None
    progress: ProgressFn | None = None
    baseline_cache_path: Path | None = None


@dataclass
class MeasuredRun:
    """The result of one process plus the raw samples for its sidecar."""

    result: RawProcessResult
    samples: list[PowerThermalSample]
    window_start_mono_s: float


def truncation_warning(count: int, backend: PyTorchBackend) -> MeasurementWarning:
    """`prompts_truncated`: how many prompts lost their start to fit the model's context."""
    return MeasurementWarning(
        code="prompts_truncated",
        message=f"{count} prompt(s) longer than {backend.prompt_budget()} tokens (the model's "
        "context less max_new_tokens) lost their start (prompts.truncate: true)",
        remediation="shorten the prompts, or use a model with a longer context",
    )


def seed_everything(seed: int) -> None:
    """Seed Python's `random`, numpy and torch (every CUDA device too) with `seed`.

    With `do_sample: true`, the same seed gives the same tokens for the same prompts,
    batches and device.
    """
    from transformers import set_seed

    set_seed(seed)


class PyTorchBackend:
    """Runs one process's share of an experiment under measurement."""

    def __init__(self, config: ExperimentConfig, context: RunContext) -> None:
        self.config = config
        self.ctx = context
        self.model: Any = None
        self.tokenizer: Any = None
        self.model_source: str | None = None
        self.dtype = resolve_dtype(config.model.dtype, context.device)
        self.cuda_ordinals = cuda_ordinals(context.device)

    def run(self, prompts: list[Prompt]) -> MeasuredRun:
        """The measured lifecycle over `prompts` (this process's shard)."""
        started_at = datetime.now(timezone.utc)
        measurement = self.config.measurement
        environment = collect_environment(self.cuda_ordinals)
        sources = select_energy_backends(measurement.energy, self.cuda_ordinals)
        try:
            self._progress("baseline", 0, 1)
            # Together: a host's idle power must not include a sibling's model load.
            self.ctx.barrier()
            baselines = measure_baselines(
                sources.backends, measurement.baseline, self.ctx.baseline_cache_path
            )
            self.ctx.barrier()
            self._progress("baseline", 1, 1)
            self._progress("loading model", 0, 1)
            self.load_model()
            self._progress("loading model", 1, 1)
            batches = encode_batches(
                prompts,
                self.tokenizer,
                batch_size=self.config.generation.batch_size,
                use_chat_template=self.config.prompts.chat_template,
                device=self.ctx.device,
                max_prompt_tokens=self.prompt_budget() if self.config.prompts.truncate else None,
            )
            seed_everything(self.config.seed)
            warmup = self.warmup(batches[0].inputs if batches else None)
            gpu_source = open_gpu_sample_source(self.cuda_ordinals)
            floor = apply_thermal_floor(
                measurement.thermal_floor,
                _temperature_reader(gpu_source),
                on_gpu=self.ctx.device.startswith("cuda"),
                progress=self.ctx.progress,
            )
            self.ctx.barrier()
            warmup = warmup.model_copy(
                update={
                    **floor.warmup_fields(),
                    "window_start_temperature_c": (
                        gpu_source.temperatures_c() if gpu_source is not None else None
                    ),
                }
            )
            # Again, so that the window's sampling does not depend on how long warmup ran.
            seed_everything(self.config.seed)
            window = self.measure_inference(batches, sources, gpu_source)
        finally:
            sources.close()
        result = self._assemble(started_at, environment, baselines, warmup, window, sources)
        extra = [floor.warning] if floor.warning is not None else []
        truncated = sum(b.truncated for b in batches)
        if truncated:
            extra.append(truncation_warning(truncated, self))
        if extra:
            result = result.model_copy(update={"warnings": [*result.warnings, *extra]})
        return MeasuredRun(result, window.samples, window.start_mono_s)

    def prompt_budget(self) -> int | None:
        """Prompt tokens that leave room for the longest generation in the model's context."""
        context = getattr(self.model.config, "max_position_embeddings", None)
        if not isinstance(context, int) or context <= 0:
            return None
        generation = self.config.generation.max_new_tokens
        longest = max(generation, self.config.measurement.warmup.max_new_tokens)
        return max(1, context - longest)

    def load_model(self) -> None:
        """Resolve and load the model and its tokenizer (left padding for batching)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = self.config.model
        resolved = resolve_model(cfg.name, revision=cfg.revision)
        if cfg.trust_remote_code:
            logger.warning(f"trust_remote_code is on: code shipped with {cfg.name} will run")
        self.model_source = resolved.source
        self.tokenizer = AutoTokenizer.from_pretrained(
            resolved.path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            resolved.path,
            revision=cfg.revision,
            dtype=self.dtype,
            trust_remote_code=cfg.trust_remote_code,
        ).to(self.ctx.device)
        self.model.eval()
        logger.info(f"loaded {cfg.name} ({resolved.source}) as {self.dtype} on {self.ctx.device}")

    def warmup(self, inputs: dict[str, torch.Tensor] | None) -> WarmupResult:
        """Warm up on this process's first batch (the thermal floor follows in `run`)."""
        config = self.config.measurement
        if inputs is None:  # this process has no prompts: nothing to warm up
            disabled = config.warmup.model_copy(update={"enabled": False})
            return warmup_until_converged(lambda: 0.0, disabled)
        gen_config = build_generation_config(
            self.config.generation, self.model, self.tokenizer, config.warmup.max_new_tokens
        )
        run_once = create_warmup_inference_fn(
            self.model, inputs, {"generation_config": gen_config}, self.synchronize
        )
        with torch.inference_mode():
            return warmup_until_converged(run_once, config.warmup, self.ctx.progress)

    def measure_inference(
        self, batches: list, sources: EnergySources, gpu_source: NvmlSampleSource | None
    ) -> WindowResult[list[BatchOutput]]:
        """The energy window: every batch of this process, then the wait for the others."""
        gen_config = build_generation_config(self.config.generation, self.model, self.tokenizer)
        samplers: list[SampleSource] = [CpuSampleSource()]
        if gpu_source is not None:
            samplers.append(gpu_source)
        window = MeasurementWindow(
            sources.backends,
            samplers,
            self.config.measurement.energy.sample_interval_ms,
            self.synchronize,
        )
        total = sum(len(b.prompts) for b in batches)
        self._progress("inference", 0, total)
        if self.ctx.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats(self.ctx.device)

        def run_batches() -> list[BatchOutput]:
            outputs: list[BatchOutput] = []
            for batch in batches:
                outputs.append(generate_batch(self.model, batch, gen_config, self.synchronize))
                self._progress("inference", sum(len(o.requests) for o in outputs), total)
            return outputs

        return window.run(run_batches, wait_for_all=self.ctx.barrier)

    def synchronize(self) -> None:
        """Wait for queued device work, so clocks and counters see it finished."""
        if self.ctx.device.startswith("cuda"):
            torch.cuda.synchronize(self.ctx.device)

    def _peak_memory_mb(self) -> float | None:
        if self.ctx.device.startswith("cuda"):
            return torch.cuda.max_memory_allocated(self.ctx.device) / 2**20
        return None

    def _progress(self, phase: str, done: int, total: int) -> None:
        if self.ctx.progress is not None:
            self.ctx.progress(phase, done, total)

    def _assemble(
        self,
        started_at: datetime,
        environment: EnvironmentMetadata,
        baselines: Baselines,
        warmup: WarmupResult,
        window: WindowResult[list[BatchOutput]],
        sources: EnergySources,
    ) -> RawProcessResult:
        outputs = window.value
        requests = [r for o in outputs for r in o.requests]
        samples = LatencySamples.concat([o.latency for o in outputs])
        input_tokens = sum(r.input_tokens for r in requests)
        output_tokens = sum(r.output_tokens for r in requests)
        measurement = self.config.measurement
        interval_ms = measurement.energy.sample_interval_ms
        on_gpu = self.ctx.device.startswith("cuda")
        account = account_energy(
            window.readings,
            baselines,
            window_s=window.window_s,
            window_start_unix_s=window.start_unix_s,
            output_tokens=output_tokens,
            gpus_expected=on_gpu,
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
            has_gpu=on_gpu,
            samples=window.samples,
            gpus=environment.gpus,
            power_integral_j=power_integral_j(
                window.samples, window.start_mono_s, window.start_mono_s + window.window_s
            ),
        )
        # Several workers on one host are each other's "others": their check belongs to
        # the aggregate, over the sum of their CPU time.
        if self.ctx.num_processes == 1:
            contention = host_contention_warning(
                window.cpu_time.process_cpu_s, window.cpu_time.host_busy_cpu_s
            )
            warnings += [contention] if contention is not None else []
        breakdown = account.breakdown
        return RawProcessResult(
            experiment_id=self.ctx.experiment_id,
            process_index=self.ctx.process_index,
            num_processes=self.ctx.num_processes,
            host=socket.gethostname(),
            host_id=host_identity(),
            pid=os.getpid(),
            config_name=self.config.name,
            model_name=self.config.model.name,
            model_source=self.model_source,
            dtype=str(self.dtype).removeprefix("torch."),
            device=self.ctx.device,
            trust_remote_code=self.config.model.trust_remote_code,
            started_at=started_at,
            ended_at=datetime.now(timezone.utc),
            inference_start_unix_s=window.start_unix_s,
            inference_end_unix_s=window.busy_end_unix_s,
            inference_duration_s=window.busy_s,
            energy_window_start_unix_s=window.start_unix_s,
            energy_window_end_unix_s=window.end_unix_s,
            energy_window_s=window.window_s,
            num_requests=len(requests),
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_per_second=(
                output_tokens / window.busy_s if output_tokens and window.busy_s > 0 else None
            ),
            requests=requests,
            energy_method=headline_method(account.components, on_gpu),
            energy_readings=window.readings,
            energy_components=account.components,
            energy_boundaries=account.boundaries,
            energy_breakdown=breakdown,
            energy_per_output_token_j=(
                breakdown.raw_j / output_tokens
                if breakdown.raw_j is not None and output_tokens
                else None
            ),
            flops=estimate_flops(model_geometry(self.model), requests, [o.shape for o in outputs]),
            latency=LatencyStats.from_samples(samples),
            latency_samples=samples,
            warmup=warmup,
            thermal_throttle=throttle_info_from_samples(window.samples, interval_ms / 1000.0),
            environment=environment,
            extended=extended_metrics(window, self._peak_memory_mb()),
            sample_interval_ms=interval_ms,
            sample_count=min(readings_per_device.values()) if readings_per_device else None,
            warnings=account.warnings + warnings,
        )


def _temperature_reader(
    gpu_source: NvmlSampleSource | None,
) -> Callable[[], list[float | None]] | None:
    """Reads every GPU's temperature through the run's NVML source; None without one."""
    if gpu_source is None:
        return None
    return lambda: list(gpu_source.temperatures_c().values())


def extended_metrics(
    window: WindowResult[list[BatchOutput]], peak_memory_mb: float | None
) -> ExtendedMetrics:
    """Memory and utilisation over the window from the sampler's CPU and GPU rows."""
    cpu_rows = [s for s in window.samples if s.device_index == CPU_DEVICE_INDEX]
    gpu_rows = [s for s in window.samples if s.device_index != CPU_DEVICE_INDEX]
    rss = [s.memory_used_mb for s in cpu_rows if s.memory_used_mb is not None]
    util = [s.cpu_util_pct for s in cpu_rows if s.cpu_util_pct is not None]
    gpu_util = [s.sm_utilisation_pct for s in gpu_rows if s.sm_utilisation_pct is not None]
    gpu_mem = [s.memory_used_mb for s in gpu_rows if s.memory_used_mb is not None]
    sizes = [len(o.requests) for o in window.value]
    return ExtendedMetrics(
        peak_memory_mb=peak_memory_mb,
        process_rss_peak_mb=max(rss) if rss else None,
        cpu_util_mean_pct=statistics.fmean(util) if util else None,
        gpu_util_mean_pct=statistics.fmean(gpu_util) if gpu_util else None,
        gpu_mem_peak_mb=max(gpu_mem) if gpu_mem else None,
        batch_effective_size=statistics.fmean(sizes) if sizes else None,
        process_cpu_s=window.cpu_time.process_cpu_s,
        host_busy_cpu_s=window.cpu_time.host_busy_cpu_s,
    )


def headline_method(components: list[ComponentEnergy], on_gpu: bool) -> EnergyMethod:
    """The weakest method among the headline boundary's components."""
    wanted = BOUNDARY_COMPONENTS[headline_boundary(on_gpu)]
    methods = [c.method for c in components if c.component in wanted]
    return weakest_method(methods) if methods else "none"


def cuda_ordinals(device: str) -> list[int]:
    """The CUDA device indices a process on `device` uses; empty off the GPU."""
    if not device.startswith("cuda"):
        return []
    index = torch.device(device).index
    return [index if index is not None else torch.cuda.current_device()]


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """`auto`: bfloat16 on a GPU that supports it, float32 otherwise."""
    if name != "auto":
        return _DTYPES[name]
    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
