"""Throttling from clock-event reason bits of the sampled devices."""

from __future__ import annotations

from llenergymeasure.domain.metrics import (
    HW_POWER_BRAKE,
    HW_SLOWDOWN,
    HW_THERMAL,
    POWER_CAP_MASK,
    SW_POWER_CAP,
    SW_THERMAL,
    THERMAL_MASK,
    THROTTLE_MASK,
    ThermalThrottleInfo,
)
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample


def throttle_info_from_samples(
    samples: list[PowerThermalSample], interval_s: float
) -> ThermalThrottleInfo:
    """OR the reason bits of the window; each duration = ticks with that class x interval.

    Three classes are kept apart: thermal (SW/HW thermal), power cap (SW power cap, HW
    power brake) and hardware slowdown. GpuIdle and other bits are not throttling. A tick
    counts once per class however many of this process's devices had it. Where no device
    reports reason bits (the CPU), every field is None: not observed, not false.
    """
    devices = [s for s in samples if s.device_index != CPU_DEVICE_INDEX]
    temps = [s.temperature_c for s in devices if s.temperature_c is not None]
    with_bits = [s for s in devices if s.throttle_reasons is not None]
    if not with_bits:
        return ThermalThrottleInfo(max_temperature_c=max(temps) if temps else None)
    bits = 0
    for s in with_bits:
        bits |= s.throttle_reasons

    def duration(mask: int) -> float:
        return len({s.t_s for s in with_bits if s.throttle_reasons & mask}) * interval_s

    return ThermalThrottleInfo(
        detected=bool(bits & THROTTLE_MASK),
        thermal=bool(bits & THERMAL_MASK),
        power=bool(bits & POWER_CAP_MASK),
        hw_slowdown=bool(bits & HW_SLOWDOWN),
        sw_thermal=bool(bits & SW_THERMAL),
        hw_thermal=bool(bits & HW_THERMAL),
        sw_power_cap=bool(bits & SW_POWER_CAP),
        hw_power=bool(bits & HW_POWER_BRAKE),
        duration_s=duration(THROTTLE_MASK),
        thermal_duration_s=duration(THERMAL_MASK),
        power_cap_duration_s=duration(POWER_CAP_MASK),
        hw_slowdown_duration_s=duration(HW_SLOWDOWN),
        max_temperature_c=max(temps) if temps else None,
    )
