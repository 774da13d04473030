"""Power scope: on a GH200-class module, power, baseline and counter cover the same parts."""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, gh200, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings
from llenergymeasure.core.power_integral import power_integrals_j, total_integral_j

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def backend_on(monkeypatch: pytest.MonkeyPatch, gpus: list[SimGpu], visible: str):
    clock = ManualClock()
    install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    devices = open_cuda_devices(range(len(visible.split(","))), visible=visible)
    return clock, NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)


def test_a_module_reads_power_at_module_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [gh200(A, power_w=Steps.constant(200.0)), SimGpu(B)]
    _, backend = backend_on(monkeypatch, gpus, f"{A},{B}")
    module, board = backend.devices
    assert (module.energy_scope, module.power_scope) == ("module", "module")
    assert (board.energy_scope, board.power_scope) == ("gpu", "gpu")
    assert module.power_w() == 320.0  # GPU 200 W + Grace CPU and memory 120 W
    assert board.power_w() == 70.0
    assert "module scope" in module.power_field


def test_every_device_reading_records_its_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [gh200(A, power_w=Steps.constant(200.0)), SimGpu(B)]
    clock, backend = backend_on(monkeypatch, gpus, f"{A},{B}")
    backend.start()
    clock.advance(2.0)
    measured = backend.stop()
    assert [(d.device_id, d.energy_scope) for d in measured.devices] == [
        (A, "module"),
        (B, "gpu"),
    ]
    assert measured.devices[0].energy_j == 640.0


def test_without_a_counter_the_integral_records_the_power_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu = gh200(A, has_energy_counter=False, has_module_power_field=False)
    _, backend = backend_on(monkeypatch, [gpu], "0")
    assert backend.method == "nvml_power_integral"
    (device,) = backend.devices
    assert (device.energy_scope, device.power_scope) == ("module", "gpu")
    backend.start()
    (reading,) = backend.stop().devices
    assert reading.energy_scope == "gpu"


def test_a_module_is_recognised_by_its_module_power_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unnamed = gh200(A, name="NVIDIA Superchip", power_w=Steps.constant(200.0))
    _, backend = backend_on(monkeypatch, [unnamed], "0")
    assert backend.devices[0].energy_scope == "module"


def test_baseline_power_of_a_module_covers_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    _, backend = backend_on(monkeypatch, [gh200(A, power_w=Steps.constant(90.0))], "0")
    (idle,) = backend.idle_power(1.0)
    assert idle.power_w == pytest.approx(210.0)  # what the counter counts at idle


def test_module_power_agrees_with_the_module_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, backend = backend_on(monkeypatch, [gh200(A, power_w=Steps.constant(200.0))], "0")
    source = NvmlSampleSource(backend.devices, power_only=True)
    samples = []
    backend.start()
    for k in range(101):
        clock.now_s = k / 10
        samples.extend(source.read(clock.now_s))
    measured = backend.stop()
    integral_j = total_integral_j(power_integrals_j(samples, 0.0, 10.0))
    assert integral_j == pytest.approx(measured.total_j) == pytest.approx(3200.0)
    warnings = collect_measurement_warnings(
        duration_s=10.0,
        power_readings={0: 100},
        readings=[measured],
        energy_requested=True,
        power_integral_j=integral_j,
    )
    assert warnings == []


def test_a_pynvml_without_scope_ids_reads_gpu_power(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [gh200(A, power_w=Steps.constant(200.0)), SimGpu(B)]
    install(monkeypatch, FakeNvml(gpus, clock=ManualClock().monotonic, takes_scope_ids=False))
    module, board = open_cuda_devices([0, 1], visible=f"{A},{B}")
    assert (module.energy_scope, module.power_scope, module.power_w()) == ("module", "gpu", 200.0)
    assert (board.power_field, board.power_w()) == ("NVML_FI_DEV_POWER_INSTANT", 70.0)
