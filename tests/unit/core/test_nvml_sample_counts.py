"""Power readings per GPU, not sampler ticks, are what a sample count must count."""

from __future__ import annotations

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlSampleSource
from llenergymeasure.core.power_integral import power_readings_per_device
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def test_failed_power_reads_and_cpu_rows_are_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    fake = install(monkeypatch, FakeNvml([SimGpu(A), SimGpu(B)], clock=clock.monotonic))
    source = NvmlSampleSource(open_cuda_devices([0, 1], visible="0,1"))
    fake.fail("nvmlDeviceGetFieldValues", pynvml.NVMLError_Unknown, 0.0, 0.65, uuid=B)
    samples = [PowerThermalSample(t_s=0.0, device_index=CPU_DEVICE_INDEX, cpu_util_pct=50.0)]
    for k in range(10):
        clock.now_s = k / 10
        samples.extend(source.read(clock.now_s))
    assert len(samples) == 21
    assert power_readings_per_device(samples) == {0: 10, 1: 3}


def test_a_gpu_without_any_power_reading_counts_zero() -> None:
    samples = [PowerThermalSample(t_s=t, device_index=3, temperature_c=40.0) for t in range(5)]
    assert power_readings_per_device(samples) == {3: 0}
