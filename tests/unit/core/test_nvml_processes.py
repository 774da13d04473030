"""Other compute processes on a measured GPU, as NVML lists them."""

from __future__ import annotations

import os

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, install
from llenergymeasure.core.energy_backends.nvml_device import open_cuda_devices
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
