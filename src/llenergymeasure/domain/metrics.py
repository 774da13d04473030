"""Measurement records. Units are in field names; an unknown value is None, never 0."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

EnergyMethod = Literal["nvml_counter", "nvml_power_integral", "rapl", "estimate", "none"]
BaselineMethod = Literal["fresh", "cached", "unavailable"]

# NVML clock-event reason bits (nvmlClocksEventReason*), stable across driver versions.
# They are stored as `throttle_reasons`; a sample with any THROTTLE_MASK bit is throttled.
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80
THERMAL_MASK = SW_THERMAL | HW_THERMAL
POWER_CAP_MASK = SW_POWER_CAP | HW_POWER_BRAKE
THROTTLE_MASK = THERMAL_MASK | POWER_CAP_MASK | HW_SLOWDOWN


class _Record(BaseModel):
    # Results written by newer versions may carry fields we do not know: keep reading.
    model_config = ConfigDict(extra="ignore", frozen=True)


class DeviceEnergy(_Record):
    """Energy of one device (a GPU, or a CPU package / the whole CPU) over a window."""

    device_id: str = Field(
        description="GPU UUID; 'package-0' or 'dram-0' (DRAM of package 0) for RAPL; 'cpu' "
        "for the estimate."
    )
    kind: Literal["gpu", "cpu", "dram"] = Field(
        description="gpu; cpu (a CPU package, or the whole CPU for the estimate); dram "
        "(memory, outside the package)."
    )
    scope: Literal["device", "machine"] = Field(
        description="machine: the source covers the whole host (RAPL, CPU estimate) and is "
        "counted once per host when processes are aggregated."
    )
    energy_j: float | None = Field(ge=0)
    name: str | None = None
    is_mig: bool = Field(
        False, description="A MIG instance: its energy is that of the whole parent GPU."
    )
    parent_uuid: str | None = Field(None, description="UUID of the parent GPU of a MIG instance.")
    power_reading_switches: list[str] = Field(
        default_factory=list,
        description="Switches of this GPU's power reading from the instant field to the 1 s "
        "average during the run: readings before and after one are not comparable.",
    )
    other_processes: list[int] | None = Field(
        None,
        description="Other compute processes NVML listed on this GPU at the window's start "
        "or end (their work is in its energy); None where it cannot tell.",
    )
    energy_scope: Literal["gpu", "module"] | None = Field(
        None,
        description="What a GPU reading covers: the GPU board, or the whole module "
        "(GH200/GB200: Grace CPU and memory included). None for CPU sources and older files.",
    )


class EnergyMeasurement(_Record):
    """What an energy backend's `stop()` returns for one window."""

    method: EnergyMethod
    host: str
    devices: list[DeviceEnergy]
    window_start_unix_s: float
    window_end_unix_s: float
    duration_s: float
    assumptions: list[str] = Field(
        default_factory=list,
        description="What an estimate assumed (e.g. TDP), or which zones a source left out.",
    )
    tdp_source: str | None = Field(
        None,
        description="The CPU estimate's full-load power: 'configured' "
        "(measurement.energy.cpu_tdp_w), 'table:<CPU model>' or 'default'; None otherwise.",
    )

    @property
    def total_j(self) -> float | None:
        """Sum over devices; None when any device could not be read."""
        values = [d.energy_j for d in self.devices]
        if not values or any(v is None for v in values):
            return None
        return float(sum(values))

    @property
    def is_estimate(self) -> bool:
        """True when the joules were modelled rather than read from a counter."""
        return self.method == "estimate"


class EnergyBreakdown(_Record):
    """The headline energy: raw joules of one boundary's window and the share above idle.

    `adjusted_j = max(0, raw_j - baseline_energy_j)` with `baseline_energy_j` the idle power
    of each counted device (or host) times its own energy window; `baseline_power_w` is
    the sum of those idle powers and `baseline_std_w` the root sum of squares of their
    spreads. `boundary` names what it covers (`domain/energy.py`): `gpu` for a process on
    GPUs, `cpu_dram` for one on the CPU. Results of schema 1 have no boundary (their one
    component was the process's device) and no baseline energy.
    """

    raw_j: float | None
    adjusted_j: float | None = Field(description="max(0, raw_j - baseline_energy_j).")
    baseline_power_w: float | None
    baseline_std_w: float | None = None
    baseline_method: BaselineMethod
    inference_duration_s: float = Field(
        description="The energy window (schema 2: the common window of all processes)."
    )
    baseline_energy_j: float | None = None
    boundary: str | None = None


class ThermalThrottleInfo(_Record):
    """Clock-event (throttle) reasons seen during the window; None where not observable.

    Three classes are kept apart: thermal (SW_THERMAL 0x20, HW_THERMAL 0x40), power cap
    (SW_POWER_CAP 0x4, HW_POWER_BRAKE 0x80) and hardware slowdown (HW_SLOWDOWN 0x8).
    GpuIdle (0x1) and the other bits are not throttling. Each duration is the number of
    sampler ticks with a bit of that class on any device, times the sampling interval.
    Files written before the split have only `detected` and `duration_s` (any class).
    """

    detected: bool | None = Field(None, description="Any class of throttling was seen.")
    thermal: bool | None = Field(None, description="SW or HW thermal slowdown was seen.")
    power: bool | None = Field(None, description="SW power cap or HW power brake was seen.")
    hw_slowdown: bool | None = Field(None, description="HW slowdown was seen.")
    sw_thermal: bool | None = None
    hw_thermal: bool | None = None
    sw_power_cap: bool | None = None
    hw_power: bool | None = Field(None, description="HW power brake was seen.")
    duration_s: float | None = Field(None, description="Seconds with any class of throttling.")
    thermal_duration_s: float | None = Field(None, description="Seconds thermally throttled.")
    power_cap_duration_s: float | None = Field(
        None, description="Seconds held by the power cap or the power brake."
    )
    hw_slowdown_duration_s: float | None = Field(None, description="Seconds of HW slowdown.")
    max_temperature_c: float | None = None


class WarmupResult(_Record):
    """How warmup ended. Warmup work is never counted in tokens, FLOPs or energy."""

    enabled: bool
    converged: bool
    final_cv: float | None
    iterations: int
    latencies_ms: list[float]
    cv_threshold: float
    thermal_floor_s: float = Field(
        description="Seconds the thermal floor waited (older files: the configured sleep)."
    )
    thermal_floor_mode: Literal["sleep", "stable_temperature"] | None = Field(
        None, description="How the floor was applied; None in files written before modes."
    )
    thermal_floor_stable: bool | None = Field(
        None,
        description="stable_temperature: whether the temperature settled before the "
        "timeout; None for sleep, or where no GPU temperature could be read.",
    )
    window_start_temperature_c: dict[str, float | None] | None = Field(
        None,
        description="Temperature of each GPU (by UUID) read just before the energy window "
        "opened; None on the CPU and in older files.",
    )


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method); None for no values."""
    if not len(values):
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def _pooled_summary(parts: list[list[float]]) -> tuple[float | None, ...]:
    """Mean, p50 and p95 of the pooled values: one concatenation, one in-place partition."""
    arrays = [np.asarray(p, dtype=np.float64) for p in parts if len(p)]
    if not arrays:
        return None, None, None
    pooled = np.concatenate(arrays)
    mean = float(pooled.mean())
    p50, p95 = _linear_quantiles(pooled, (0.50, 0.95))
    return mean, p50, p95


def _linear_quantiles(values: np.ndarray, quantiles: tuple[float, ...]) -> list[float]:
    """Quantiles by numpy's default (linear) method, partitioning `values` in place."""
    positions = [q * (len(values) - 1) for q in quantiles]
    bounds = [(int(np.floor(p)), int(np.ceil(p))) for p in positions]
    values.partition(sorted({k for pair in bounds for k in pair}))
    return [
        float(values[lo] + (values[hi] - values[lo]) * (p - lo))
        for p, (lo, hi) in zip(positions, bounds, strict=True)
    ]


class LatencyStats(_Record):
    """Percentiles over requests (TTFT, end-to-end, batch return) and over token gaps (ITL).

    Built from pooled samples (`pooled`), never by averaging percentiles. End-to-end is
    the time from the batch's start to the request's own last token; batch return is the
    time from the batch's start to when `generate` returned (after a device synchronize),
    what a caller of the batch waits. Files written before batch return have None there.
    """

    ttft_mean_ms: float | None = None
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    itl_mean_ms: float | None = None
    itl_p50_ms: float | None = None
    itl_p95_ms: float | None = None
    e2e_mean_ms: float | None = Field(None, description="Batch start to the request's last token.")
    e2e_p50_ms: float | None = Field(None, description="Batch start to the request's last token.")
    e2e_p95_ms: float | None = Field(None, description="Batch start to the request's last token.")
    batch_return_mean_ms: float | None = Field(
        None, description="Batch start to the return of `generate` (after synchronize)."
    )
    batch_return_p50_ms: float | None = Field(
        None, description="Batch start to the return of `generate` (after synchronize)."
    )
    batch_return_p95_ms: float | None = Field(
        None, description="Batch start to the return of `generate` (after synchronize)."
    )
    num_requests: int = 0
    method: Literal["per_step_hook"] = "per_step_hook"

    @classmethod
    def from_samples(cls, samples: LatencySamples) -> LatencyStats:
        """Mean, p50 and p95 of each latency kind of one set of samples."""
        return cls.pooled([samples])

    @classmethod
    def pooled(cls, parts: list[LatencySamples]) -> LatencyStats:
        """Statistics of several sets of samples taken together (processes, batches).

        Concatenates per kind with numpy rather than building a pooled model, so that
        thousands of processes with thousands of samples each aggregate in seconds.
        """
        ttft = _pooled_summary([p.ttft_ms for p in parts])
        itl = _pooled_summary([p.itl_ms for p in parts])
        e2e = _pooled_summary([p.e2e_ms for p in parts])
        batch_return = _pooled_summary([p.batch_return_ms for p in parts])
        return cls(
            ttft_mean_ms=ttft[0],
            ttft_p50_ms=ttft[1],
            ttft_p95_ms=ttft[2],
            itl_mean_ms=itl[0],
            itl_p50_ms=itl[1],
            itl_p95_ms=itl[2],
            e2e_mean_ms=e2e[0],
            e2e_p50_ms=e2e[1],
            e2e_p95_ms=e2e[2],
            batch_return_mean_ms=batch_return[0],
            batch_return_p50_ms=batch_return[1],
            batch_return_p95_ms=batch_return[2],
            num_requests=sum(len(p.e2e_ms) for p in parts),
        )


class LatencySamples(_Record):
    """The per-request samples behind `LatencyStats`, kept so processes can be pooled."""

    ttft_ms: list[float] = Field(default_factory=list)
    itl_ms: list[float] = Field(default_factory=list)
    e2e_ms: list[float] = Field(
        default_factory=list, description="Batch start to the request's last token."
    )
    batch_return_ms: list[float] = Field(
        default_factory=list,
        description="Batch start to the return of `generate`, one per request; empty in "
        "files written before it was recorded.",
    )

    @classmethod
    def concat(cls, parts: list[LatencySamples]) -> LatencySamples:
        """Pool samples (of batches or of processes) without averaging anything."""
        return cls(
            ttft_ms=[v for p in parts for v in p.ttft_ms],
            itl_ms=[v for p in parts for v in p.itl_ms],
            e2e_ms=[v for p in parts for v in p.e2e_ms],
            batch_return_ms=[v for p in parts for v in p.batch_return_ms],
        )


class FlopsResult(_Record):
    """Inference FLOPs, useful and executed (formulas in docs/methodology.md).

    Files written before `analytic_2n_attn` hold `palm_2n` (2 x N x tokens) in
    `total_flops` only; their `flops_useful` and `flops_executed` read as None.
    """

    total_flops: float | None = Field(
        description="Equal to `flops_useful` (`palm_2n` files: 2 x N x tokens)."
    )
    flops_useful: float | None = Field(
        None, description="What the requests needed: own tokens, causal attention."
    )
    flops_executed: float | None = Field(
        None, description="What the device computed: padding, finished rows, dense masks."
    )
    method: Literal["palm_2n", "analytic_2n_attn"] = Field(
        "palm_2n", description="A file without it predates `analytic_2n_attn`."
    )
    non_embedding_params: int | None = Field(
        description="Weights multiplied per token, output head included."
    )
    output_head_params: int | None = None
    tokens_processed: int = Field(description="Input plus output tokens of the requests.")


class ExtendedMetrics(_Record):
    """Resource use during the window; None where the machine cannot tell."""

    peak_memory_mb: float | None = Field(None, description="Peak accelerator memory allocated.")
    process_rss_peak_mb: float | None = None
    cpu_util_mean_pct: float | None = None
    gpu_util_mean_pct: float | None = Field(
        None,
        description="Mean of NVML's utilization.gpu over the window: % of the time any "
        "kernel ran on the device, not SM occupancy (one small kernel reads 100 %).",
    )
    gpu_mem_peak_mb: float | None = None
    batch_effective_size: float | None = Field(
        None, description="Mean number of requests per generate call."
    )
    kv_cache_hit_rate: float | None = Field(None, description="Not measured by this backend.")
    process_cpu_s: float | None = Field(
        None, description="CPU seconds (user + system, all threads) of this process in the window."
    )
    host_busy_cpu_s: float | None = Field(
        None,
        description="Busy CPU seconds of the whole host in the window (user + nice + system "
        "+ irq + softirq): what machine-level energy sources see.",
    )


class MeasurementWarning(_Record):
    """An informational warning about the quality of a measurement."""

    code: str
    message: str
    remediation: str
    processes: list[int] = Field(
        default_factory=list,
        description="In an aggregate: the indices of the processes that gave this warning "
        "(empty in a process result and in older files).",
    )
