"""Temperature through nvmlDeviceGetTemperatureV, the deprecated call where it is missing."""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices

A = "GPU-aaaaaaaa-0000"


def device_on(monkeypatch: pytest.MonkeyPatch, gpu: SimGpu):
    fake = install(monkeypatch, FakeNvml([gpu], clock=ManualClock().monotonic))
    (device,) = open_cuda_devices([0], visible="0")
    return fake, device


def test_temperature_is_read_through_the_versioned_call(monkeypatch: pytest.MonkeyPatch) -> None:
    fake, device = device_on(monkeypatch, SimGpu(A, temperature_c=Steps.constant(52.0)))
    assert device.temperature_c() == 52.0
    assert fake.calls["nvmlDeviceGetTemperatureV"] == 1
    assert fake.calls["nvmlDeviceGetTemperature"] == 0


def test_a_driver_without_it_answers_through_the_old_call_once_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu = SimGpu(A, temperature_c=Steps.constant(48.0), has_temperature_v=False)
    fake, device = device_on(monkeypatch, gpu)
    assert [device.temperature_c() for _ in range(3)] == [48.0] * 3
    assert fake.calls["nvmlDeviceGetTemperatureV"] == 1  # remembered as missing
    assert fake.calls["nvmlDeviceGetTemperature"] == 3
