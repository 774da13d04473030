"""Throttling from clock-event reason bits of the sampled devices."""

from __future__ import annotations

from llenergymeasure.core.power_thermal import CPU_DEVICE_INDEX, PowerThermalSample
from llenergymeasure.domain.metrics import (
    HW_POWER_BRAKE,
    HW_THERMAL,
    SW_POWER_CAP,
    SW_THERMAL,
    THROTTLE_MASK,
    ThermalThrottleInfo,
)


def throttle_info_from_samples(
    samples: list[PowerThermalSample], interval_s: float
) -> ThermalThrottleInfo:
    """OR the reason bits of the window; duration = throttled samples x interval.

    A device sample counts as throttled when any thermal or power bit is set. Where no
    device reports reason bits (the CPU), every field is None: not observed, not false.
    """
    devices = [s for s in samples if s.device_index != CPU_DEVICE_INDEX]
    temps = [s.temperature_c for s in devices if s.temperature_c is not None]
    with_bits = [s for s in devices if s.throttle_reasons is not None]
    if not with_bits:
        return ThermalThrottleInfo(max_temperature_c=max(temps) if temps else None)
    bits = 0
    for s in with_bits:
        bits |= s.throttle_reasons
    # A tick counts once however many of this process's devices were throttled in it.
    throttled = len({s.t_s for s in with_bits if s.throttle_reasons & THROTTLE_MASK})
    return ThermalThrottleInfo(
        detected=bool(bits & THROTTLE_MASK),
        thermal=bool(bits & (SW_THERMAL | HW_THERMAL)),
        power=bool(bits & (SW_POWER_CAP | HW_POWER_BRAKE)),
        sw_thermal=bool(bits & SW_THERMAL),
        hw_thermal=bool(bits & HW_THERMAL),
        hw_power=bool(bits & HW_POWER_BRAKE),
        duration_s=throttled * interval_s,
        max_temperature_c=max(temps) if temps else None,
    )
