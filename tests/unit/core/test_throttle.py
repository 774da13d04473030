"""Throttle figures from sampled clock-event reasons: ticks, not device readings."""

from __future__ import annotations

import pytest

from llenergymeasure.core.throttle import throttle_info_from_samples
from llenergymeasure.domain.metrics import HW_SLOWDOWN, SW_POWER_CAP
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample


def tick(t_s: float, reasons: tuple[int, int]) -> list[PowerThermalSample]:
    """One sampler tick of two GPUs (NVML indices 0 and 3) and the CPU row."""
    return [
        PowerThermalSample(t_s, 0, throttle_reasons=reasons[0], temperature_c=60.0 + t_s),
        PowerThermalSample(t_s, 3, throttle_reasons=reasons[1], temperature_c=50.0),
        PowerThermalSample(t_s, CPU_DEVICE_INDEX, cpu_util_pct=90.0),
    ]


def test_a_tick_throttled_on_two_gpus_counts_once() -> None:
    samples = [
        *tick(0.0, (0, 0)),
        *tick(0.1, (SW_POWER_CAP, SW_POWER_CAP)),
        *tick(0.2, (SW_POWER_CAP, HW_SLOWDOWN)),
        *tick(0.3, (0, HW_SLOWDOWN)),
        *tick(0.4, (0, 0)),
    ]
    info = throttle_info_from_samples(samples, interval_s=0.1)
    assert info.duration_s == pytest.approx(0.3)  # three throttled ticks, not five readings
    assert info.detected and info.power and not info.thermal
    assert info.max_temperature_c == pytest.approx(60.4)


def test_without_reason_bits_throttling_is_unknown() -> None:
    cpu_only = [PowerThermalSample(t / 10, CPU_DEVICE_INDEX, cpu_util_pct=50.0) for t in range(5)]
    info = throttle_info_from_samples(cpu_only, interval_s=0.1)
    assert info.detected is None and info.duration_s is None


def test_idle_and_application_clock_reasons_are_not_throttling() -> None:
    gpu_idle, application_clocks = 0x1, 0x2  # nvmlClocksEventReasonGpuIdle, ...AppClocks
    samples = [s for t in range(4) for s in tick(t / 10, (gpu_idle, application_clocks))]
    info = throttle_info_from_samples(samples, interval_s=0.1)
    assert info.detected is False and info.power is False and info.thermal is False
    assert info.duration_s == 0.0
