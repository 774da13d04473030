"""The NVML idle baseline comes from the instrument the window uses."""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, Steps, h100, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"
MIG = "MIG-cccccccc-2222"


def backend_on(
    monkeypatch: pytest.MonkeyPatch, gpus: list[SimGpu], visible: str, start_s: float = 0.0
) -> tuple[ManualClock, NvmlBackend]:
    clock = ManualClock()
    install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    devices = open_cuda_devices(range(len(visible.split(","))), visible=visible)
    clock.now_s = start_s
    return clock, NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)


def test_with_a_counter_the_baseline_is_its_delta_over_the_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the sensor sees the first 25 ms of each 100 ms: 90 W there, 50 W the rest
    idle = Steps.bursts(50.0, 90.0, period_s=0.1, start_s=0.0, length_s=0.025, until_s=5.0)
    _, backend = backend_on(monkeypatch, [SimGpu(A, power_w=idle)], "0")
    (baseline,) = backend.idle_power(1.0)
    assert baseline.source == "counter"
    assert baseline.power_w == pytest.approx(90.0)  # what the counter counts at idle
    assert baseline.key == f"{backend.host}|gpu|{A}"


def test_sub_windows_end_on_counter_updates_so_none_is_short_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """0.15 s sub-windows hold one or two 100 ms updates unless aligned to them."""
    _, backend = backend_on(monkeypatch, [SimGpu(A, power_w=Steps.constant(60.0))], "0", 0.05)
    (baseline,) = backend.idle_power(0.75)
    assert baseline.source == "counter"
    assert baseline.power_w == pytest.approx(60.0, abs=0.5)
    assert baseline.std_w < 2.0


def test_noisy_idle_gives_mean_and_the_spread_of_sub_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpus = [h100(A, power_w=Steps.constant(70.0), sensor_noise_w=5.0), SimGpu(B)]
    _, backend = backend_on(monkeypatch, gpus, "0,1")
    noisy, steady = backend.idle_power(5.0)
    assert noisy.power_w == pytest.approx(70.0, abs=1.0)
    assert 0.1 < noisy.std_w < 5.0  # a sub-window averages ten noisy updates
    assert steady.power_w == pytest.approx(70.0) and steady.std_w == pytest.approx(0.0, abs=1e-6)


def test_a_mig_instance_is_baselined_once_per_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = SimGpu(A, power_w=Steps.constant(80.0), mig=[SimMig(MIG)])
    _, backend = backend_on(monkeypatch, [gpu], MIG)
    (baseline,) = backend.idle_power(1.0)
    assert baseline.key.endswith(f"|gpu|{A}") and baseline.source == "counter"
    assert baseline.power_w == pytest.approx(80.0)


def test_without_a_counter_the_baseline_is_sampled_power(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = SimGpu(A, power_w=Steps.constant(65.0), has_energy_counter=False)
    _, backend = backend_on(monkeypatch, [gpu], "0")
    (baseline,) = backend.idle_power(1.0)
    assert baseline.source == "power_reading"
    assert baseline.power_w == 65.0 and baseline.std_w == 0.0
