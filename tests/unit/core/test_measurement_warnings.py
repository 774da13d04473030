"""Measurement warnings: each fires on its condition, with a remedy, and only then."""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.measurement_warnings import (
    collect_measurement_warnings,
    host_contention_warning,
)
from llenergymeasure.core.power_integral import power_integrals_j, total_integral_j
from llenergymeasure.domain.environment import GpuInfo
from llenergymeasure.domain.samples import PowerThermalSample

A = "GPU-aaaaaaaa-0000"


def codes(**kwargs) -> list[str]:
    base = {
        "duration_s": 30.0,
        "power_readings": {0: 300},
        "readings": [],
        "energy_requested": False,
    }
    return [w.code for w in collect_measurement_warnings(**{**base, **kwargs})]


def gpu_info(persistence_mode: bool | None) -> GpuInfo:
    return GpuInfo(index=0, uuid=A, name="H100", persistence_mode=persistence_mode)


def temps(*values: float) -> list[PowerThermalSample]:
    return [
        PowerThermalSample(t_s=i, device_index=0, temperature_c=v) for i, v in enumerate(values)
    ]


def test_a_clean_run_has_no_warnings() -> None:
    assert codes(gpus=[gpu_info(True)], samples=temps(60.0, 68.0)) == []


def test_short_window_and_few_samples() -> None:
    assert codes(duration_s=9.9, power_readings={0: 9}) == ["short_measurement", "low_sample_count"]


def test_persistence_mode_off() -> None:
    (warning,) = collect_measurement_warnings(
        duration_s=30.0,
        power_readings={0: 300},
        readings=[],
        energy_requested=False,
        gpus=[gpu_info(False)],
    )
    assert warning.code == "persistence_mode_off" and A in warning.message
    assert "nvidia-smi -pm 1" in warning.remediation
    assert codes(gpus=[gpu_info(None)]) == []  # unknown is not "off"


def test_thermal_drift_over_ten_degrees() -> None:
    assert codes(samples=temps(55.0, 60.0, 65.0)) == []
    assert codes(samples=temps(55.0, 60.0, 65.5)) == ["thermal_drift"]


def sampled_window(
    monkeypatch: pytest.MonkeyPatch, has_instant_power: bool
) -> tuple[float | None, float | None]:
    """Counter energy and power integral over 3 s with a 100 -> 300 W step at 2 s."""
    clock = ManualClock()
    gpu = SimGpu(
        A, power_w=Steps([(0.0, 100.0), (2.0, 300.0)]), has_instant_power=has_instant_power
    )
    install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    devices = open_cuda_devices([0], visible="0")
    backend = NvmlBackend(devices, clock=clock.monotonic)
    source = NvmlSampleSource(devices)
    samples = []
    backend.start()
    for k in range(31):
        clock.now_s = k / 10
        samples.extend(source.read(clock.now_s))
    measured = backend.stop()
    return measured, total_integral_j(power_integrals_j(samples, 0.0, 3.0))


def test_counter_and_instant_power_integral_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    measured, integral_j = sampled_window(monkeypatch, has_instant_power=True)
    assert measured.total_j == 500.0
    # the instant field lags the step by one 100 ms update: 200 W x 0.1 s / 2 short
    assert integral_j == pytest.approx(490.0)
    assert codes(readings=[measured], power_integral_j=integral_j) == []


def test_lagging_averaged_power_disagrees_with_the_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    measured, integral_j = sampled_window(monkeypatch, has_instant_power=False)
    assert integral_j == pytest.approx(400.0, abs=2.0)  # the 1 s average lags the step
    (warning,) = collect_measurement_warnings(
        duration_s=30.0,
        power_readings={0: 300},
        readings=[measured],
        energy_requested=True,
        power_integral_j=integral_j,
    )
    assert warning.code == "energy_cross_check"
    assert "500.0 J" in warning.message and "20.0%" in warning.message


def test_host_contention_names_both_figures_when_others_take_most_of_the_cpu() -> None:
    warning = host_contention_warning(process_cpu_s=2.0, host_busy_cpu_s=8.0)
    assert warning is not None and warning.code == "host_contention"
    assert "75%" in warning.message
    assert "host 8.0 CPU s" in warning.message and "this run 2.0 CPU s" in warning.message


def test_a_quiet_host_is_not_contended() -> None:
    assert host_contention_warning(process_cpu_s=9.0, host_busy_cpu_s=10.0) is None
    # others' share is large, but half a CPU second of daemons is noise
    assert host_contention_warning(process_cpu_s=0.1, host_busy_cpu_s=0.4) is None
    assert host_contention_warning(process_cpu_s=0.0, host_busy_cpu_s=0.0) is None
