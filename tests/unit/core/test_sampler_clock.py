"""Samples carry the sampler's clock, the monotonic one the latency hook and windows use.

A wall-clock stamp (about 1.7e9 s) would put every sample outside the window, so the
power integral, the sidecar times and the throttle duration would all be wrong.
"""

from __future__ import annotations

import time

from llenergymeasure.core.power_thermal import CpuSampleSource, PowerThermalSampler


def sample_times(sampler: PowerThermalSampler) -> list[float]:
    sampler.start()
    time.sleep(0.1)
    return [s.t_s for s in sampler.stop()]


def test_samples_are_stamped_by_the_monotonic_clock_by_default() -> None:
    before = time.monotonic()
    times = sample_times(PowerThermalSampler([CpuSampleSource(min_interval_s=0)], interval_ms=20))
    after = time.monotonic()
    assert len(times) >= 2  # the first at start, the last at stop
    assert all(before <= t <= after for t in times), (before, times[:3], after)


def test_samples_are_stamped_by_the_clock_the_sampler_is_given() -> None:
    def clock() -> float:
        return time.monotonic() + 1_000_000.0

    before = clock()
    times = sample_times(
        PowerThermalSampler([CpuSampleSource(min_interval_s=0)], interval_ms=20, clock=clock)
    )
    after = clock()
    assert len(times) >= 2  # the first at start, the last at stop
    assert all(before <= t <= after for t in times), (before, times[:3], after)
