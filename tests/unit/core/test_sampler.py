from __future__ import annotations

import time

from llenergymeasure.core.power_thermal import CpuSampleSource, PowerThermalSampler
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample


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
