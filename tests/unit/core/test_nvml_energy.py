"""GPU energy from the simulated NVML: exact joules of scripted power profiles."""

from __future__ import annotations

import time

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings
from llenergymeasure.core.window import MeasurementWindow

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"
MIG = "MIG-cccccccc-2222"
COUNTER_RESOLUTION_S = 0.1


def step_profile() -> Steps:
    """100 W for 2 s, then 300 W: 1100 J over the first 5 s."""
    return Steps([(0.0, 100.0), (2.0, 300.0)])


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def backend_on(
    monkeypatch: pytest.MonkeyPatch, gpus: list[SimGpu], clock: ManualClock, visible: str
) -> tuple[FakeNvml, NvmlBackend]:
    fake = install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    devices = open_cuda_devices(range(len(visible.split(","))), visible=visible)
    return fake, NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)


def test_counter_energy_is_the_profile_integral(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    _, backend = backend_on(monkeypatch, [SimGpu(A, power_w=step_profile())], clock, "0")
    assert backend.method == "nvml_counter"
    backend.start()
    clock.advance(5.0)
    measured = backend.stop()
    assert measured.method == "nvml_counter"
    assert measured.total_j == 1100.0
    assert measured.duration_s == 5.0
    assert measured.window_end_unix_s - measured.window_start_unix_s == pytest.approx(5.0)
    (device,) = measured.devices
    assert (device.device_id, device.kind, device.scope) == (A, "gpu", "device")
    assert device.name == "NVIDIA H100 80GB HBM3" and not device.is_mig
    assert measured.host == backend.host


def test_counter_resolution_bounds_an_off_grid_window(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    fake, backend = backend_on(monkeypatch, [SimGpu(A, power_w=step_profile())], clock, "0")
    clock.advance(0.05)
    backend.start()
    clock.advance(5.0)
    measured = backend.stop()
    true_j = fake.gpus[0].energy_j(0.05, 5.05)
    assert true_j == pytest.approx(1110.0)
    assert measured.total_j == 1100.0  # the counter last moved at 0.0 s and 5.0 s
    assert abs(measured.total_j - true_j) <= 300.0 * COUNTER_RESOLUTION_S


def test_every_owned_device_is_recorded_by_uuid(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    gpus = [SimGpu(A, power_w=step_profile()), SimGpu(B, power_w=Steps.constant(50.0))]
    _, backend = backend_on(monkeypatch, gpus, clock, f"{B},{A}")
    backend.start()
    clock.advance(5.0)
    measured = backend.stop()
    assert [(d.device_id, d.energy_j) for d in measured.devices] == [(B, 250.0), (A, 1100.0)]
    assert measured.total_j == 1350.0


def test_mig_instance_reports_its_parent_energy_flagged(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    gpu = SimGpu(A, power_w=step_profile(), mig=[SimMig(MIG)])
    _, backend = backend_on(monkeypatch, [gpu], clock, MIG)
    backend.start()
    clock.advance(5.0)
    measured = backend.stop()
    (device,) = measured.devices
    assert (device.device_id, device.is_mig, device.parent_uuid) == (MIG, True, A)
    assert device.energy_j == 1100.0
    codes = [w.code for w in warnings_for(measured)]
    assert "mig_parent_energy" in codes


def test_without_a_counter_energy_is_the_integral_of_instant_power(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window's sampling process reads the fake on the real clock; the window integrates."""
    gpu = SimGpu(A, power_w=Steps([(0.0, 100.0), (0.6, 300.0)]), has_energy_counter=False)
    fake = install(monkeypatch, FakeNvml([gpu]))
    devices = open_cuda_devices([0], visible="0")
    backend = NvmlBackend(devices, interval_ms=20)
    assert backend.method == "nvml_power_integral"
    window = MeasurementWindow([backend], [NvmlSampleSource(devices)], 20)
    result = window.run(lambda: time.sleep(1.2))
    (measured,) = result.readings
    t0_s = result.start_mono_s - fake.origin_s
    t1_s = t0_s + result.window_s
    assert measured.method == "nvml_power_integral"
    assert "NVML_FI_DEV_POWER_INSTANT" in measured.assumptions[0]
    expected_j = gpu.energy_j(t0_s, t1_s)
    assert expected_j > 240.0
    # the instant field reports the last completed 100 ms update (it lags the step by up
    # to one period) and the trapezoid adds under one tick; allow a late tick or two
    assert measured.total_j == pytest.approx(expected_j, abs=200.0 * (0.1 + 0.05))


def test_counter_lost_mid_run_gives_null_and_a_warning(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    fake, backend = backend_on(monkeypatch, [SimGpu(A)], clock, "0")
    fake.fail("nvmlDeviceGetTotalEnergyConsumption", pynvml.NVMLError_GpuIsLost, start_s=1.0)
    backend.start()
    clock.advance(2.0)
    measured = backend.stop()
    assert measured.devices[0].energy_j is None and measured.total_j is None
    assert "energy_incomplete" in [w.code for w in warnings_for(measured)]


def test_counter_that_goes_backwards_is_null(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    fake, backend = backend_on(monkeypatch, [SimGpu(A)], clock, "0")
    backend.start()
    clock.advance(2.0)
    fake.gpus[0].counter_at_start_mj = 0  # the driver was reloaded
    assert backend.stop().total_j is None


def warnings_for(measured) -> list:
    return collect_measurement_warnings(
        duration_s=measured.duration_s,
        power_readings={0: 100},
        readings=[measured],
        energy_requested=True,
    )
