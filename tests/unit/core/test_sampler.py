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
    sampler = PowerThermalSampler([CpuSampleSource(min_interval_s=0)], interval_ms=20)
    sampler.start()
    time.sleep(0.5)
    samples = sampler.stop()
    assert 20 <= len(samples) <= 30
    assert all(s.device_index == CPU_DEVICE_INDEX for s in samples)
    assert all(s.memory_used_mb > 0 and s.power_w is None for s in samples)
    times = [s.t_s for s in samples]
    assert times == sorted(times)


def test_a_failing_source_never_stops_the_others() -> None:
    sampler = PowerThermalSampler(
        [FailingSource(), CpuSampleSource(min_interval_s=0)], interval_ms=20
    )
    sampler.start()
    time.sleep(0.2)
    samples = sampler.stop()
    assert len(samples) >= 5
    assert "device fell off the bus" in sampler.errors["broken-device"]


def test_first_sample_is_taken_at_start() -> None:
    sampler = PowerThermalSampler([CpuSampleSource(min_interval_s=0)], interval_ms=60_000)
    before = time.monotonic()
    sampler.start()
    assert len(sampler.samples) == 1 and before <= sampler.samples[0].t_s <= time.monotonic()
    assert len(sampler.stop()) == 2


def test_the_host_row_is_read_at_most_every_100_ms_but_first_and_last() -> None:
    # At 10 ms the GPUs are read every tick; the host's utilisation, counted by the
    # kernel in ticks of 4-10 ms, is not worth reading more often than every 100 ms.
    sampler = PowerThermalSampler([CpuSampleSource()], interval_ms=10)
    sampler.start()
    time.sleep(0.55)
    samples = sampler.stop()
    times = [s.t_s for s in samples]
    gaps = [b - a for a, b in zip(times, times[1:-1], strict=False)]
    assert 5 <= len(samples) <= 8
    assert all(gap >= 0.1 for gap in gaps)
    assert times[-1] - times[0] >= 0.55  # the last tick reads the host whatever the gap
