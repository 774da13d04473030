"""Other compute processes on a measured GPU, as NVML lists them."""

from __future__ import annotations

import os
import subprocess
import sys

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings
from llenergymeasure.core.window import MeasurementWindow
from llenergymeasure.errors import DeviceError

A = "GPU-aaaaaaaa-0000"
MIG_1, MIG_2 = "MIG-11111111-0001", "MIG-22222222-0002"


def device_on(monkeypatch: pytest.MonkeyPatch, gpu: SimGpu, visible: str = "0"):
    fake = install(monkeypatch, FakeNvml([gpu], clock=ManualClock().monotonic))
    (device,) = open_cuda_devices([0], visible=visible)
    return fake, device


def test_other_processes_are_listed_and_this_one_is_not(monkeypatch: pytest.MonkeyPatch) -> None:
    _, device = device_on(monkeypatch, SimGpu(A, compute_pids=[os.getpid(), 4242, 17]))
    assert device.compute_processes() == [17, 4242]


def test_a_gpu_running_only_this_process_lists_none(monkeypatch: pytest.MonkeyPatch) -> None:
    _, device = device_on(monkeypatch, SimGpu(A, compute_pids=[os.getpid()]))
    assert device.compute_processes() == []


def test_a_mig_instance_sees_the_work_of_every_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    instances = [SimMig(MIG_1, compute_pids=[os.getpid()]), SimMig(MIG_2, compute_pids=[99])]
    _, device = device_on(monkeypatch, SimGpu(A, mig=instances), visible=MIG_1)
    assert device.compute_processes() == [99]  # its energy is the whole GPU's


def test_unsupported_is_none_and_other_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    _, device = device_on(monkeypatch, SimGpu(A, has_process_query=False))
    assert device.compute_processes() is None
    fake, device = device_on(monkeypatch, SimGpu(A))
    fake.fail("nvmlDeviceGetComputeRunningProcesses", pynvml.NVMLError_GpuIsLost)
    with pytest.raises(DeviceError, match="fallen off the bus"):
        device.compute_processes()


def window_warnings(monkeypatch: pytest.MonkeyPatch, gpu: SimGpu, during=None) -> list:
    clock = ManualClock()
    install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    backend = NvmlBackend(open_cuda_devices([0], visible="0"), clock=clock.monotonic)
    backend.start()
    clock.advance(5.0)
    if during is not None:
        during(gpu)
    measured = backend.stop()
    return measured, collect_measurement_warnings(
        duration_s=30.0, power_readings={0: 300}, readings=[measured], energy_requested=True
    )


def test_another_process_on_the_measured_gpu_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def arrives(gpu: SimGpu) -> None:
        gpu.compute_pids.append(4242)  # a job that started during the window

    measured, warnings = window_warnings(
        monkeypatch, SimGpu(A, compute_pids=[os.getpid(), 17]), during=arrives
    )
    assert measured.devices[0].other_processes == [17, 4242]
    (shared,) = [w for w in warnings if w.code == "gpu_shared"]
    assert f"{A}: pid 17, 4242" in shared.message


def test_a_gpu_of_its_own_gives_no_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    measured, warnings = window_warnings(monkeypatch, SimGpu(A, compute_pids=[os.getpid()]))
    assert measured.devices[0].other_processes == []
    assert "gpu_shared" not in {w.code for w in warnings}


def test_the_engines_own_processes_on_the_gpu_are_not_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """vLLM's engine core (or an endpoint's server) computes on the GPU for the run."""
    clock = ManualClock()
    core = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    engine_core, stranger = core.pid, 17
    gpu = SimGpu(A, compute_pids=[os.getpid(), engine_core, stranger])
    install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    devices = open_cuda_devices([0], visible="0")
    window = MeasurementWindow(
        [NvmlBackend(devices, clock=clock.monotonic)],
        [NvmlSampleSource(devices)],
        60_000,
        clock=clock.monotonic,
        sampling="thread",
    )
    try:
        window.count_as_own([engine_core])
        result = window.run(lambda: clock.advance(5.0))
    finally:
        core.kill()
        core.wait()
    (reading,) = result.readings
    assert reading.devices[0].other_processes == [stranger]
    warnings = collect_measurement_warnings(
        duration_s=5.0, power_readings={0: 50}, readings=result.readings, energy_requested=True
    )
    (shared,) = [w for w in warnings if w.code == "gpu_shared"]
    assert f"{A}: pid {stranger}" in shared.message and str(engine_core) not in shared.message
