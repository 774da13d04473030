"""Which power reading a device uses, and when it may switch to the 1 s average."""

from __future__ import annotations

from collections.abc import Iterator

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.energy_backends.nvml_device import NvmlDevice
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings
from llenergymeasure.errors import DeviceError
from llenergymeasure.log import logger

A = "GPU-aaaaaaaa-0000"
INSTANT = pynvml.NVML_FI_DEV_POWER_INSTANT
AVERAGE = "nvmlDeviceGetPowerUsage (1 s average)"


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    logger.enable("llenergymeasure")
    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(sink)
    logger.disable("llenergymeasure")


def device_at_step(monkeypatch: pytest.MonkeyPatch, **kwargs) -> tuple[FakeNvml, NvmlDevice]:
    """A device 300 ms after a 100 -> 300 W step: instant 300 W, 1 s average 160 W."""
    clock = ManualClock()
    gpu = SimGpu(A, power_w=Steps([(0.0, 100.0), (2.0, 300.0)]), **kwargs)
    fake = install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    (device,) = open_cuda_devices([0], visible="0")
    clock.now_s = 2.3
    return fake, device


def power_or_error(device: NvmlDevice) -> float | str | None:
    try:
        return device.power_w()
    except DeviceError:
        return "error"


def test_one_failed_read_of_the_field_does_not_switch(
    monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    fake, device = device_at_step(monkeypatch)
    fake.fail_field(INSTANT, pynvml.NVML_ERROR_TIMEOUT, calls=1)
    with pytest.raises(DeviceError, match="instant power field"):
        device.power_w()  # that reading fails; the average does not stand in for it
    assert device.power_w() == 300.0
    fake.fail("nvmlDeviceGetFieldValues", pynvml.NVMLError_Unknown, calls=5)
    for _ in range(5):
        with pytest.raises(DeviceError):
            device.power_w()
    assert device.power_w() == 300.0
    assert device.power_field == "NVML_FI_DEV_POWER_INSTANT"
    assert device.power_field_switches == [] and warnings == []


def test_failures_in_a_row_switch_with_a_warning_on_record(
    monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    fake, device = device_at_step(monkeypatch)
    fake.fail_field(INSTANT, pynvml.NVML_ERROR_TIMEOUT, calls=2)
    assert [power_or_error(device) for _ in range(3)] == ["error", "error", 300.0]
    fake.fail_field(INSTANT, pynvml.NVML_ERROR_TIMEOUT, calls=3)
    assert [power_or_error(device) for _ in range(2)] == ["error", "error"]
    assert device.power_w() == 160.0  # the third in a row switches, this read included
    assert device.power_field == AVERAGE
    (switch,) = device.power_field_switches
    assert A in switch and "3 failed reads in a row" in switch and AVERAGE in switch
    assert len(warnings) == 1 and "switched" in warnings[0]
    asked = fake.calls["nvmlDeviceGetFieldValues"]
    assert device.power_w() == 160.0
    assert fake.calls["nvmlDeviceGetFieldValues"] == asked


def test_not_supported_from_the_field_switches_at_once(
    monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    fake, device = device_at_step(monkeypatch)
    fake.fail_field(INSTANT, pynvml.NVML_ERROR_NOT_SUPPORTED)
    assert device.power_w() == 160.0
    (switch,) = device.power_field_switches
    assert "NOT_SUPPORTED" in switch and len(warnings) == 1


def test_a_device_without_the_field_uses_the_average_from_the_start(
    monkeypatch: pytest.MonkeyPatch, warnings: list[str]
) -> None:
    _, device = device_at_step(monkeypatch, has_instant_power=False)
    assert device.power_field == AVERAGE
    assert device.power_w() == 160.0
    assert device.power_field_switches == [] and warnings == []


def test_a_switch_during_a_window_is_a_warning_in_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    gpu = SimGpu(A, power_w=Steps.constant(200.0))
    fake = install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    backend = NvmlBackend(open_cuda_devices([0], visible="0"), clock=clock.monotonic)
    backend.start()
    clock.advance(1.0)
    fake.fail_field(INSTANT, pynvml.NVML_ERROR_NOT_SUPPORTED)
    backend.devices[0].power_w()  # the sampler's read, say: the field is gone
    measured = backend.stop()
    (switch,) = measured.devices[0].power_reading_switches
    assert "NOT_SUPPORTED" in switch
    codes = [
        w.code
        for w in collect_measurement_warnings(
            duration_s=30.0, power_readings={0: 300}, readings=[measured], energy_requested=True
        )
    ]
    assert "power_reading_switched" in codes
