"""What a closed window's observations say, worked out once for `llem run` and the API.

Energy by component and boundary with the baseline subtracted (`core/energy_accounting.py`),
throttling and the sampler's resource rows over the window, and the warnings of every
check on the measurement itself. `core/assembly.py` adds what the engine knows (tokens,
latencies, memory the engine allocated); `llem.measure` and `EnergyMonitor` return it
as it is, so a window of the caller's code gets the same figures and the same checks as
a run's.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llenergymeasure.config.measurement import MeasurementConfig
from llenergymeasure.core.baseline import Baselines
from llenergymeasure.core.energy_accounting import EnergyAccount, account_energy
from llenergymeasure.core.energy_backends import EnergySources
from llenergymeasure.core.measurement_warnings import (
    collect_measurement_warnings,
    host_contention_warning,
)
from llenergymeasure.core.power_integral import power_readings_per_device
from llenergymeasure.core.throttle import throttle_info_from_samples
from llenergymeasure.core.window import WindowResult
from llenergymeasure.domain.environment import GpuInfo
from llenergymeasure.domain.metrics import ExtendedMetrics, MeasurementWarning, ThermalThrottleInfo
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX


@dataclass
class WindowSummary:
    """A window's energy account, throttling, resource use and warnings.

    `warnings` holds the account's (baseline, unmeasured GPU, clipped) and the checks'
    (estimate, short window, few samples, sampler errors, persistence mode, counter
    against integral, host contention where asked). `sample_count` is the fewest power
    readings of any sampled device; None without any.
    """

    account: EnergyAccount
    thermal_throttle: ThermalThrottleInfo
    extended: ExtendedMetrics
    warnings: list[MeasurementWarning]
    sample_count: int | None


def summarise_window(
    window: WindowResult[Any],
    *,
    baselines: Baselines,
    sources: EnergySources,
    config: MeasurementConfig,
    has_gpu: bool,
    gpus: Sequence[GpuInfo],
    output_tokens: int = 0,
    check_contention: bool = True,
) -> WindowSummary:
    """Everything the window's readings and samples say, with its warnings.

    Args:
        window: the closed window's readings, samples and clocks.
        baselines: the idle baselines to subtract (or the reason there are none).
        sources: the window's energy backends and why a GPU is unmeasured, if one is.
        config: the measurement settings (backend, interval, PUE, grid intensity).
        has_gpu: the window measured GPUs (their energy is then the headline boundary,
            null with a warning where no backend read it).
        gpus: those GPUs as they were at the start (persistence mode).
        output_tokens: tokens generated in the window, for the per-token boundaries.
        check_contention: warn when other processes kept the host busy; off where
            several processes of one experiment share a host (the aggregate checks them).

    """
    account = account_energy(
        window.readings,
        baselines,
        window_s=window.window_s,
        window_start_unix_s=window.start_unix_s,
        output_tokens=output_tokens,
        gpus_expected=has_gpu,
        gpu_problem=sources.gpu_problem,
        config=config,
    )
    readings_per_device = power_readings_per_device(window.samples)
    warnings = account.warnings + collect_measurement_warnings(
        duration_s=window.window_s,
        power_readings=readings_per_device,
        readings=window.readings,
        energy_requested=config.energy.backend != "none",
        sampler_errors=window.sampler_errors,
        has_gpu=has_gpu,
        samples=window.samples,
        gpus=gpus,
        power_integral_j=window.power_integral_j,
    )
    if check_contention:
        cpu_time = window.cpu_time
        contention = host_contention_warning(cpu_time.process_cpu_s, cpu_time.host_busy_cpu_s)
        warnings += [contention] if contention is not None else []
    return WindowSummary(
        account=account,
        thermal_throttle=throttle_info_from_samples(
            window.samples, config.energy.sample_interval_ms / 1000.0
        ),
        extended=sampled_resources(window),
        warnings=warnings,
        sample_count=min(readings_per_device.values()) if readings_per_device else None,
    )


def sampled_resources(window: WindowResult[Any]) -> ExtendedMetrics:
    """Memory and utilisation over the window from the sampler's CPU and GPU rows."""
    cpu_rows = [s for s in window.samples if s.device_index == CPU_DEVICE_INDEX]
    gpu_rows = [s for s in window.samples if s.device_index != CPU_DEVICE_INDEX]
    rss = [s.memory_used_mb for s in cpu_rows if s.memory_used_mb is not None]
    util = [s.cpu_util_pct for s in cpu_rows if s.cpu_util_pct is not None]
    gpu_util = [s.sm_utilisation_pct for s in gpu_rows if s.sm_utilisation_pct is not None]
    gpu_mem = [s.memory_used_mb for s in gpu_rows if s.memory_used_mb is not None]
    return ExtendedMetrics(
        process_rss_peak_mb=max(rss) if rss else None,
        cpu_util_mean_pct=statistics.fmean(util) if util else None,
        gpu_util_mean_pct=statistics.fmean(gpu_util) if gpu_util else None,
        gpu_mem_peak_mb=max(gpu_mem) if gpu_mem else None,
        process_cpu_s=window.cpu_time.process_cpu_s,
        host_busy_cpu_s=window.cpu_time.host_busy_cpu_s,
    )
