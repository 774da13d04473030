"""What a simulated GPU draws and what its power sensor and energy counter make of it.

A real NVIDIA power sensor does not watch all the time: on A100 and H100 it averages
the first 25 ms of every 100 ms update period (Yang et al., 2023, "Part-time Power
Measurements: nvidia-smi's Lack of Attention"). Every reading NVML gives is built from
those sensed windows:
- the instant power field is the mean of the last completed window;
- `nvmlDeviceGetPowerUsage` is the mean of the last second of windows (Ampere and newer
  except GA100), or the instant value (GA100 and older);
- the total-energy counter adds each period's sensed mean x the period, so it is the
  integral of what the sensor saw, not of what the GPU drew: a load that bursts between
  the sensed windows is missed by the counter and the power readings alike.
Seeded Gaussian noise is added to each sensed window (as idle readings jitter).
A module-scope device (GH200/GB200 class) also has `module_extra_w` (Grace CPU and
memory): its counter and its MODULE-scope power cover GPU + extra; the GPU-scope power
field and `nvmlDeviceGetPowerUsage` cover the GPU only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


class ManualClock:
    """A clock that moves only when told to; `sleep` advances it."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += seconds

    advance = sleep


class Steps:
    """A piecewise-constant script: `(t_s, value)` pairs; the first value also holds before."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = sorted(points)

    @classmethod
    def constant(cls, value: float) -> Steps:
        return cls([(0.0, value)])

    @classmethod
    def bursts(
        cls,
        low: float,
        high: float,
        period_s: float,
        start_s: float,
        length_s: float,
        until_s: float,
    ) -> Steps:
        """`high` for `length_s` from `start_s` into each `period_s`, else `low` (to `until_s`)."""
        points = [(0.0, low)]
        for k in range(math.ceil(until_s / period_s)):
            t0_s = k * period_s + start_s
            points += [(t0_s, high), (t0_s + length_s, low)]
        return cls(points)

    def at(self, t_s: float) -> float:
        value = self.points[0][1]
        for start, v in self.points:
            if start <= t_s:
                value = v
        return value

    def integral(self, t0_s: float, t1_s: float) -> float:
        """Exact integral over [t0_s, t1_s]."""
        total = 0.0
        bounds = [-math.inf] + [t for t, _ in self.points[1:]] + [math.inf]
        for (_, value), lo, hi in zip(self.points, bounds, bounds[1:], strict=False):
            total += value * max(0.0, min(t1_s, hi) - max(t0_s, lo))
        return total


@dataclass
class SimMig:
    """A MIG instance of a simulated GPU (GPU instance and compute instance ids as NVML's)."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    memory_total_mb: float = 9856.0
    memory_used_mb: float = 13.0
    gpu_instance_id: int = 7
    compute_instance_id: int = 0
    compute_pids: list[int] = field(default_factory=list)


@dataclass
class SimGpu:
    """A simulated GPU; times in the scripts are seconds since the fake was created.

    `clock_event_reasons` None derives the bits as a driver sets them: `GpuIdle` while no
    kernel runs (utilisation 0), SW power cap while power is within 5 % of the limit.
    """

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power_w: Steps = field(default_factory=lambda: Steps.constant(70.0))
    temperature_c: Steps = field(default_factory=lambda: Steps.constant(35.0))
    sm_utilisation_pct: Steps = field(default_factory=lambda: Steps.constant(0.0))
    clock_event_reasons: Steps | None = None
    memory_used_mb: Steps = field(default_factory=lambda: Steps.constant(512.0))
    memory_total_mb: float = 81559.0
    update_period_s: float = 0.1
    sensor_window_s: float = 0.025
    sensor_noise_w: float = 0.0
    noise_seed: int = 0
    power_usage_is_average: bool = True
    module_extra_w: Steps | None = None
    has_module_power_field: bool = True
    has_energy_counter: bool = True
    has_instant_power: bool = True
    has_clocks_event_reasons: bool = True
    has_temperature_v: bool = True
    has_process_query: bool = True
    compute_pids: list[int] = field(default_factory=list)
    persistence_mode: bool = True
    compute_capability: tuple[int, int] = (9, 0)
    pci_bus: int | None = None
    power_limit_w: float = 700.0
    default_power_limit_w: float = 700.0
    sm_clock_mhz: int = 1980
    memory_clock_mhz: int = 2619
    counter_at_start_mj: int = 987_654_321
    mig: list[SimMig] = field(default_factory=list)

    def energy_j(self, t0_s: float, t1_s: float, module: bool = False) -> float:
        """The true energy drawn over [t0_s, t1_s] (GPU only, or the whole module)."""
        extra = self.module_extra_w if module and self.module_extra_w is not None else None
        return self.power_w.integral(t0_s, t1_s) + (extra.integral(t0_s, t1_s) if extra else 0.0)

    def sensed_w(self, period: int, module: bool = False) -> float:
        """Mean power the sensor saw in update period `period` (its first `sensor_window_s`)."""
        t0_s = period * self.update_period_s
        watts = self.energy_j(t0_s, t0_s + self.sensor_window_s, module) / self.sensor_window_s
        if self.sensor_noise_w:
            watts += random.Random(f"{self.noise_seed}/{self.uuid}/{period}").gauss(
                0.0, self.sensor_noise_w
            )
        return watts

    def completed_periods(self, t_s: float) -> int:
        """Update periods completed by t_s (the driver publishes at each period's end)."""
        return math.floor(t_s / self.update_period_s + 1e-9)

    def counter_j(self, t_s: float, module: bool) -> float:
        """Energy the counter has added since the fake started: sensed means x period."""
        periods = range(self.completed_periods(t_s))
        return sum(self.sensed_w(k, module) for k in periods) * self.update_period_s

    def instant_w(self, t_s: float, module: bool = False) -> float:
        """The instant power reading: the last completed sensed window."""
        return self.sensed_w(self.completed_periods(t_s) - 1, module)

    def average_w(self, t_s: float) -> float:
        """The 1 s averaged reading: mean of the sensed windows of the last second."""
        last = self.completed_periods(t_s)
        count = max(1, round(1.0 / self.update_period_s))
        return sum(self.sensed_w(k) for k in range(last - count, last)) / count

    def reasons_at(self, t_s: float) -> int:
        """Clock-event reason bits at t_s (scripted, or derived from load)."""
        if self.clock_event_reasons is not None:
            return int(self.clock_event_reasons.at(t_s))
        bits = 0
        if self.sm_utilisation_pct.at(t_s) == 0:
            bits |= 0x1  # nvmlClocksEventReasonGpuIdle
        if self.power_w.at(t_s) >= 0.95 * self.power_limit_w:
            bits |= 0x4  # nvmlClocksEventReasonSwPowerCap
        return bits


def h100(uuid: str, **kwargs) -> SimGpu:
    """An H100 SXM: 25 ms of every 100 ms sensed, 1 s averaged `nvmlDeviceGetPowerUsage`."""
    return SimGpu(uuid, **{"sensor_noise_w": 1.5, **kwargs})


def a100(uuid: str, **kwargs) -> SimGpu:
    """A GA100 (A100 SXM): part-time sensor, `nvmlDeviceGetPowerUsage` returns instant power."""
    defaults = {
        "name": "NVIDIA A100-SXM4-80GB",
        "compute_capability": (8, 0),
        "power_limit_w": 400.0,
        "default_power_limit_w": 400.0,
        "power_usage_is_average": False,
        "sensor_noise_w": 1.5,
    }
    return SimGpu(uuid, **{**defaults, **kwargs})


def gh200(uuid: str, **kwargs) -> SimGpu:
    """A GH200 superchip: the energy counter and MODULE-scope power include the Grace CPU."""
    defaults = {
        "name": "NVIDIA GH200 480GB",
        "module_extra_w": Steps.constant(120.0),
        "power_limit_w": 900.0,
        "default_power_limit_w": 900.0,
        "memory_total_mb": 97871.0,
    }
    return SimGpu(uuid, **{**defaults, **kwargs})
