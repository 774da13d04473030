"""The window's own samples are the power integral: one sampler, one integral, one NVML open.

On the simulated NVML. Exact figures come from a manual clock, which only a sampler
thread in this process can share (`sampling="thread"`); the default sampling process is
checked on the real clock.
"""

from __future__ import annotations

import time

import pynvml
import pytest

import llenergymeasure as llem
from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.config.measurement import EnergyConfig
from llenergymeasure.core.energy_backends import select_energy_backends
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.environment import collect_environment
from llenergymeasure.core.window import MeasurementWindow

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"
POWER_READ = "nvmlDeviceGetFieldValues"  # the instant power field, one call per read
OPEN = "nvmlDeviceGetHandleByUUID"


def no_counter(uuid: str, power_w: Steps) -> SimGpu:
    return SimGpu(uuid, power_w=power_w, has_energy_counter=False)


def test_without_a_counter_the_energy_is_the_windows_own_trapezoid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """100 W, then 300 W from 2 s; the window's samples at 0.5 s and 5.5 s (interval 60 s).

    The instant field reports the last completed 100 ms update: 100 W at 0.5 s, 300 W at
    5.5 s. The trapezoid over the window is 5 s x (100 + 300) / 2 = 1000 J, against the
    1100 J drawn: the integral of two samples, read once, from the window's sampler.
    """
    clock = ManualClock(0.5)
    gpus = [no_counter(A, Steps([(0.0, 100.0), (2.0, 300.0)])), no_counter(B, Steps.constant(50))]
    fake = install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    devices = open_cuda_devices([0, 1], visible=f"{A},{B}")
    backend = NvmlBackend(devices, interval_ms=60_000, clock=clock.monotonic)
    reads_before = fake.calls[POWER_READ]
    window = MeasurementWindow(
        [backend],
        [NvmlSampleSource(devices)],
        60_000,
        clock=clock.monotonic,
        sampling="thread",
    )
    result = window.run(lambda: clock.advance(5.0))
    (reading,) = result.readings
    assert reading.method == "nvml_power_integral"
    assert [(d.device_id, d.energy_j) for d in reading.devices] == [(A, 1000.0), (B, 250.0)]
    assert result.gpu_power_integrals_j == {0: 1000.0, 1: 250.0}
    assert result.power_integral_j == reading.total_j == 1250.0
    # two ticks (start, stop) x two GPUs: the window's sampler is the only reader
    assert fake.calls[POWER_READ] - reads_before == 4
    assert len([s for s in result.samples if s.power_w is not None]) == 4


def test_with_a_counter_the_integral_is_the_cross_check_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock(0.5)
    fake = install(
        monkeypatch, FakeNvml([SimGpu(A, power_w=Steps.constant(200.0))], clock=clock.monotonic)
    )
    devices = open_cuda_devices([0], visible=A)
    backend = NvmlBackend(devices, clock=clock.monotonic)
    window = MeasurementWindow(
        [backend], [NvmlSampleSource(devices)], 60_000, clock=clock.monotonic, sampling="thread"
    )
    result = window.run(lambda: clock.advance(3.0))
    (reading,) = result.readings
    assert reading.method == "nvml_counter" and reading.total_j == 600.0
    assert result.power_integral_j == 600.0
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] >= 2


def test_a_window_opens_each_gpu_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Energy backend, sampler and environment read the same opened devices."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{A},{B}")
    fake = install(monkeypatch, FakeNvml([SimGpu(A), SimGpu(B)]))
    sources = select_energy_backends(EnergyConfig(backend="nvml"), [0, 1])
    environment = collect_environment([0, 1], sources.gpus)
    assert [g.uuid for g in environment.gpus] == [A, B]
    assert sources.gpu_sample_source() is not None
    assert fake.calls[OPEN] == 2
    with llem.measure(devices=[0, 1], energy="nvml", sample_interval_ms=20) as measured:
        time.sleep(0.3)
    assert fake.calls[OPEN] == 4  # the window's own set: each GPU opened once more
    (gpu,) = [c for c in measured.components if c.component == "gpu"]
    assert gpu.device_ids == [A, B] and gpu.energy_j is not None


def test_the_sampling_process_reads_the_devices_on_the_windows_clock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default: a forked child samples the (simulated) GPU; its times bracket the window."""
    gpu = no_counter(A, Steps.constant(100.0))
    install(monkeypatch, FakeNvml([gpu]))
    devices = open_cuda_devices([0], visible=A)
    window = MeasurementWindow(
        [NvmlBackend(devices, interval_ms=20)], [NvmlSampleSource(devices)], 20
    )
    assert window.sampler.pid is not None
    before_s = time.monotonic()
    result = window.run(lambda: time.sleep(0.5))
    after_s = time.monotonic()
    times = [s.t_s for s in result.samples]
    assert result.sampler_errors == {}
    assert len(times) >= 10 and times == sorted(times)
    assert before_s <= times[0] <= result.start_mono_s
    assert result.start_mono_s + result.window_s <= times[-1] <= after_s
    (reading,) = result.readings
    assert reading.total_j == pytest.approx(100.0 * result.window_s, rel=1e-6)


def test_a_power_reading_switch_in_the_sampling_process_reaches_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child reads its own copy of the device; the switch it makes is handed back."""
    fake = install(monkeypatch, FakeNvml([SimGpu(A, power_w=Steps.constant(200.0))]))
    devices = open_cuda_devices([0], visible=A)
    fake.fail_field(pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_ERROR_NOT_SUPPORTED)
    window = MeasurementWindow([NvmlBackend(devices)], [NvmlSampleSource(devices)], 20)
    result = window.run(lambda: time.sleep(0.2))
    (reading,) = result.readings
    (switch,) = reading.devices[0].power_reading_switches
    assert "NOT_SUPPORTED" in switch and devices[0].power_field_switches == [switch]
    assert devices[0].power_field == "nvmlDeviceGetPowerUsage (1 s average)"
    assert all(s.power_w is not None for s in result.samples if s.device_index == 0)
