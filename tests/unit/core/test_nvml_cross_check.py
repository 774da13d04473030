"""The counter-vs-sampled-power cross-check against devices that sense part of the time.

It fires where the two instruments see different things (the samples alias a bursty
load, or they cover a different power scope than the counter) and stays quiet on a
steady, noisy load. It cannot see what the sensor itself misses: both readings come from
the same part-time sensor.
"""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, gh200, h100, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings
from llenergymeasure.core.power_integral import power_integrals_j, total_integral_j
from llenergymeasure.domain.metrics import EnergyMeasurement

A = "GPU-aaaaaaaa-0000"
WINDOW_S = 20.0


def batch_cadence(start_s: float = 0.0, length_s: float = 0.1) -> Steps:
    """A prefill burst of 600 W (100 ms by default) every 500 ms over 150 W decoding."""
    return Steps.bursts(150.0, 600.0, 0.5, start_s=start_s, length_s=length_s, until_s=30.0)


def measured_window(
    monkeypatch: pytest.MonkeyPatch, gpu: SimGpu, interval_s: float
) -> tuple[FakeNvml, EnergyMeasurement, float | None]:
    """Counter energy over WINDOW_S and the integral of power sampled every `interval_s`."""
    clock = ManualClock()
    fake = install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    devices = open_cuda_devices([0], visible="0")
    backend = NvmlBackend(devices, clock=clock.monotonic)
    source = NvmlSampleSource(devices, power_only=True)
    samples = []
    backend.start()
    for k in range(round(WINDOW_S / interval_s) + 1):
        clock.now_s = k * interval_s
        samples.extend(source.read(clock.now_s))
    measured = backend.stop()
    return fake, measured, total_integral_j(power_integrals_j(samples, 0.0, WINDOW_S))


def cross_check_codes(measured: EnergyMeasurement, integral_j: float | None) -> list[str]:
    return [w.code for w in cross_check(measured, integral_j)]


def cross_check(measured: EnergyMeasurement, integral_j: float | None) -> list:
    return collect_measurement_warnings(
        duration_s=measured.duration_s,
        power_readings={0: 200},
        readings=[measured],
        energy_requested=True,
        power_integral_j=integral_j,
    )


def test_quiet_on_a_steady_noisy_load(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = h100(A, power_w=Steps.constant(310.0), sensor_noise_w=3.0)
    _, measured, integral_j = measured_window(monkeypatch, gpu, interval_s=0.1)
    assert measured.total_j == pytest.approx(310.0 * WINDOW_S, rel=0.01)
    assert cross_check_codes(measured, integral_j) == []


def test_quiet_when_every_sensed_window_is_sampled(monkeypatch: pytest.MonkeyPatch) -> None:
    _, measured, integral_j = measured_window(
        monkeypatch, SimGpu(A, power_w=batch_cadence()), interval_s=0.1
    )
    assert measured.total_j == pytest.approx(240.0 * WINDOW_S)
    assert cross_check_codes(measured, integral_j) == []


def test_fires_when_the_samples_alias_a_bursty_load(monkeypatch: pytest.MonkeyPatch) -> None:
    _, measured, integral_j = measured_window(
        monkeypatch, SimGpu(A, power_w=batch_cadence()), interval_s=0.25
    )
    assert measured.total_j == pytest.approx(240.0 * WINDOW_S)
    assert integral_j == pytest.approx(150.0 * WINDOW_S)  # every sample lands between bursts
    (warning,) = cross_check(measured, integral_j)
    assert warning.code == "energy_cross_check" and "sampling interval" in warning.remediation


def test_fires_when_power_covers_the_gpu_and_the_counter_the_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpu = gh200(A, power_w=Steps.constant(200.0), has_module_power_field=False)
    _, measured, integral_j = measured_window(monkeypatch, gpu, interval_s=0.1)
    assert measured.total_j == pytest.approx(320.0 * WINDOW_S)  # GPU + Grace CPU and memory
    assert integral_j == pytest.approx(200.0 * WINDOW_S, rel=0.01)
    (warning,) = cross_check(measured, integral_j)
    assert warning.code == "energy_cross_check" and "module" in warning.remediation


def test_cannot_see_bursts_the_sensor_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bursts between the sensed 25 ms windows escape the counter and the samples alike."""
    gpu = SimGpu(A, power_w=batch_cadence(start_s=0.025, length_s=0.075))
    fake, measured, integral_j = measured_window(monkeypatch, gpu, interval_s=0.1)
    drawn_j = fake.gpus[0].energy_j(0.0, WINDOW_S)
    assert drawn_j == pytest.approx(217.5 * WINDOW_S)
    assert measured.total_j == pytest.approx(150.0 * WINDOW_S)  # 31 % below what was drawn
    assert cross_check_codes(measured, integral_j) == []
