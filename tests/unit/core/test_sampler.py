from __future__ import annotations

import time

import pytest

from llenergymeasure.core.power_thermal import (
    CPU_DEVICE_INDEX,
    CpuSampleSource,
    PowerThermalSample,
    PowerThermalSampler,
    power_integral_j,
)


class FailingSource:
    name = "broken-device"
    errors: dict[str, str] = {}

    def read(self, t_s: float) -> list[PowerThermalSample]:
        raise RuntimeError("device fell off the bus")


def test_samples_at_the_configured_interval() -> None:
    sampler = PowerThermalSampler([CpuSampleSource()], interval_ms=20)
    sampler.start()
    time.sleep(0.5)
    samples = sampler.stop()
    assert 20 <= len(samples) <= 30
    assert all(s.device_index == CPU_DEVICE_INDEX for s in samples)
    assert all(s.memory_used_mb > 0 and s.power_w is None for s in samples)
    times = [s.t_s for s in samples]
    assert times == sorted(times)


def test_a_failing_source_never_stops_the_others() -> None:
    sampler = PowerThermalSampler([FailingSource(), CpuSampleSource()], interval_ms=20)
    sampler.start()
    time.sleep(0.2)
    samples = sampler.stop()
    assert len(samples) >= 5
    assert "device fell off the bus" in sampler.errors["broken-device"]


def test_first_sample_is_taken_at_start() -> None:
    sampler = PowerThermalSampler([CpuSampleSource()], interval_ms=60_000)
    before = time.monotonic()
    sampler.start()
    assert len(sampler.samples) == 1 and before <= sampler.samples[0].t_s <= time.monotonic()
    assert len(sampler.stop()) == 2


def gpu(t_s: float, power_w: float | None, index: int = 0) -> PowerThermalSample:
    return PowerThermalSample(t_s=t_s, device_index=index, power_w=power_w)


def test_power_integral_is_the_trapezoid_summed_over_devices() -> None:
    samples = [gpu(0.0, 100.0), gpu(1.0, 300.0), gpu(2.0, 300.0)]
    samples += [gpu(0.0, 50.0, 1), gpu(2.0, 50.0, 1), PowerThermalSample(1.0, CPU_DEVICE_INDEX)]
    assert power_integral_j(samples) == 200.0 + 300.0 + 100.0


def test_power_integral_is_clipped_to_the_window() -> None:
    samples = [gpu(0.0, 100.0), gpu(1.0, 300.0), gpu(2.0, 300.0)]
    # from 0.5 s (200 W, interpolated) to 1.5 s: 0.5 x (200 + 300) / 2 + 0.5 x 300
    assert power_integral_j(samples, 0.5, 1.5) == pytest.approx(275.0)
    # past the last sample the last reading holds
    assert power_integral_j(samples, 1.0, 3.0) == pytest.approx(600.0)


def test_power_integral_skips_missing_readings_and_needs_two() -> None:
    assert power_integral_j([gpu(0.0, 100.0), gpu(1.0, None), gpu(2.0, 100.0)]) == 200.0
    assert power_integral_j([gpu(0.0, 100.0)]) is None
    assert power_integral_j([PowerThermalSample(0.0, CPU_DEVICE_INDEX)]) is None
