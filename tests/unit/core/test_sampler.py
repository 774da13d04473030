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


def test_the_host_row_is_read_every_100_ms_and_first_and_last() -> None:
    # At 10 ms the GPUs are read every tick; the host's utilisation, counted by the
    # kernel in ticks of 4-10 ms, is not worth reading more often than every 100 ms.
    sampler = PowerThermalSampler([CpuSampleSource()], interval_ms=10)
    sampler.start()
    time.sleep(0.55)
    samples = sampler.stop()
    times = [s.t_s for s in samples]
    gaps = [b - a for a, b in zip(times, times[1:-1], strict=False)]
    assert 5 <= len(samples) <= 8
    assert all(gap >= 0.09 for gap in gaps), gaps  # ticks on schedule; one late by < 10 ms
    assert times[-1] - times[0] >= 0.55  # the last tick reads the host whatever the gap


class EveryTickSource:
    """A GPU-like source: no minimum interval, read at every tick."""

    name = "gpu"
    errors: dict[str, str] = {}

    def read(self, t_s: float) -> list[PowerThermalSample]:
        return [PowerThermalSample(t_s=t_s, device_index=0, power_w=100.0)]


def waits_of(sampler: PowerThermalSampler, ticks: int) -> list[float]:
    """The waits the schedule asks for over `ticks` wake-ups, on a clock that follows them."""
    now = [0.0]
    sampler._clock = lambda: now[0]
    waits: list[float] = []

    def stop_requested(delay_s: float) -> bool:
        waits.append(delay_s)
        now[0] += delay_s
        return len(waits) > ticks

    sampler.begin()
    sampler.run_until(stop_requested)
    return waits[:-1]


def test_a_sampler_with_only_the_host_row_wakes_when_it_is_due_not_every_tick() -> None:
    # No GPU: at 10 ms, nine wake-ups in ten would read nothing and take a core from
    # the inference for it.
    sampler = PowerThermalSampler([CpuSampleSource()], interval_ms=10)
    waits = waits_of(sampler, 5)
    assert [round(w, 6) for w in waits] == [0.1] * 5
    assert len(sampler.samples) == 1 + 5


def test_with_a_gpu_every_tick_is_taken_and_the_host_row_every_tenth() -> None:
    sampler = PowerThermalSampler([EveryTickSource(), CpuSampleSource()], interval_ms=10)
    waits = waits_of(sampler, 30)
    assert [round(w, 6) for w in waits] == [0.01] * 30
    host = [round(s.t_s, 6) for s in sampler.samples if s.device_index == CPU_DEVICE_INDEX]
    assert host == [0.0, 0.1, 0.2, 0.3]
    assert sum(s.device_index == 0 for s in sampler.samples) == 31


def test_a_host_row_interval_that_is_not_a_multiple_of_the_ticks_rounds_up() -> None:
    sampler = PowerThermalSampler([CpuSampleSource()], interval_ms=30)
    assert [round(w, 6) for w in waits_of(sampler, 3)] == [0.12] * 3
