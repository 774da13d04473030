"""Live telemetry over a real measurement window, GPUs from the simulated NVML."""

from __future__ import annotations

import time

import pytest

from fakes.nvml import FakeNvml, SimGpu, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlSampleSource
from llenergymeasure.core.live_telemetry import (
    LiveTelemetry,
    Telemetry,
    cpu_estimate_full_load_w,
)
from llenergymeasure.core.power_integral import power_integrals_j, total_integral_j
from llenergymeasure.core.power_thermal import CpuSampleSource
from llenergymeasure.core.window import MeasurementWindow

A = "GPU-aaaaaaaa-0000"
B = "GPU-bbbbbbbb-0000"


def window_on_two_gpus(monkeypatch: pytest.MonkeyPatch) -> MeasurementWindow:
    gpus = [SimGpu(A, power_w=Steps.constant(300.0)), SimGpu(B, power_w=Steps.constant(100.0))]
    install(monkeypatch, FakeNvml(gpus))
    source = NvmlSampleSource(open_cuda_devices([0, 1], visible="0,1"))
    return MeasurementWindow([], [CpuSampleSource(min_interval_s=0), source], interval_ms=20)


def by_device(telemetry: Telemetry) -> dict:
    return {d.device: d for d in telemetry.devices}


def test_power_per_device_and_energy_the_integral_of_the_window_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = window_on_two_gpus(monkeypatch)
    reports: list[Telemetry] = []
    live = LiveTelemetry(window, reports.append, cpu_full_load_w=10.0, interval_s=0.1)

    def body() -> None:
        time.sleep(0.3)
        live.set_output_tokens(7)
        time.sleep(0.3)

    live.start()
    result = window.run(body)
    live.stop()

    *running, final = reports
    assert len(running) >= 3
    open_window = by_device(running[1])
    assert open_window["gpu0"].power_w == pytest.approx(300.0)
    assert open_window["gpu1"].power_w == pytest.approx(100.0)
    assert (open_window["gpu0"].component, open_window["gpu0"].power_method) == ("gpu", "nvml")
    cpu = open_window["cpu"]
    assert (cpu.component, cpu.power_method) == ("cpu", "estimate")
    assert cpu.power_w is not None and 0.0 <= cpu.power_w <= 10.0
    for name in ("gpu0", "gpu1", "cpu"):
        energies = [by_device(r)[name].energy_j for r in reports]
        assert energies == sorted(energies), f"{name}'s energy so far never decreases"
    assert [r.output_tokens for r in reports][-1] == 7 and running[0].output_tokens is None
    # The last report: the window is closed, no power; the energy is the samples' integral.
    closed = by_device(final)
    assert all(d.power_w is None for d in closed.values())
    for index, name in ((0, "gpu0"), (1, "gpu1")):
        samples = [s for s in result.samples if s.device_index == index]
        assert closed[name].energy_j == pytest.approx(total_integral_j(power_integrals_j(samples)))
        assert closed[name].energy_method == "power_integral"
    assert closed["gpu0"].energy_j == pytest.approx(300.0 * result.window_s, rel=0.2)


def test_no_cpu_power_without_the_cpu_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    window = window_on_two_gpus(monkeypatch)
    reports: list[Telemetry] = []
    live = LiveTelemetry(window, reports.append, cpu_full_load_w=None, interval_s=0.05)
    live.start()
    window.run(lambda: time.sleep(0.2))
    live.stop()
    assert set(by_device(reports[-1])) == {"gpu0", "gpu1"}


def test_a_failing_report_never_ends_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    window = window_on_two_gpus(monkeypatch)
    calls = []

    def report(telemetry: Telemetry) -> None:
        calls.append(telemetry)
        raise BrokenPipeError("the launcher went away")

    live = LiveTelemetry(window, report, cpu_full_load_w=None, interval_s=0.05)
    live.start()
    assert window.run(lambda: time.sleep(0.2) or "done").value == "done"
    live.stop()
    assert len(calls) >= 2, "the thread went on reporting after a failure"


def test_the_cpu_estimate_gives_the_full_load_power() -> None:
    estimate = CpuEstimateBackend(tdp_w=42.0)
    assert cpu_estimate_full_load_w([estimate]) == 42.0
    assert cpu_estimate_full_load_w([]) is None
