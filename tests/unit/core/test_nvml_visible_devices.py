"""CUDA_VISIBLE_DEVICES in every form CUDA accepts names the right NVML device."""

from __future__ import annotations

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.errors import DeviceError

A = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"
B = "GPU-8932f9a1-0000-4106-c12f-20bd9faed9f6"
C = "GPU-c0ffee00-1111-2222-3333-444455556666"
MIG_1 = "MIG-11111111-aaaa-bbbb-cccc-000000000001"
MIG_2 = "MIG-22222222-aaaa-bbbb-cccc-000000000002"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    instances = [
        SimMig(MIG_1, gpu_instance_id=7, compute_instance_id=0),
        SimMig(MIG_2, gpu_instance_id=8, compute_instance_id=0),
    ]
    gpus = [SimGpu(A), SimGpu(B), SimGpu(C, mig=instances)]
    return install(monkeypatch, FakeNvml(gpus, clock=ManualClock().monotonic))


def uuid_of(entry: str) -> str:
    (device,) = open_cuda_devices([0], visible=entry)
    return device.uuid


def test_an_abbreviated_uuid_names_the_one_device_it_begins(fake: FakeNvml) -> None:
    assert uuid_of("GPU-8932f937") == A
    assert uuid_of("GPU-8932f9a") == B
    assert uuid_of("GPU-c0ffee") == C
    assert uuid_of("MIG-2222") == MIG_2


def test_an_ambiguous_prefix_is_an_error_naming_it(fake: FakeNvml) -> None:
    with pytest.raises(DeviceError, match="GPU-8932f9 is ambiguous.*GPU-8932f937.*GPU-8932f9a1"):
        uuid_of("GPU-8932f9")


def test_a_prefix_of_no_device_is_not_found(fake: FakeNvml) -> None:
    with pytest.raises(DeviceError, match="nvidia-smi -L") as info:
        uuid_of("GPU-deadbeef")
    assert isinstance(info.value.__cause__, pynvml.NVMLError_NotFound)


def test_the_legacy_mig_form_names_gpu_and_compute_instance(fake: FakeNvml) -> None:
    (device,) = open_cuda_devices([0], visible=f"MIG-{C}/8/0")
    assert device.uuid == MIG_2 and device.is_mig and device.parent_uuid == C
    assert uuid_of("MIG-GPU-c0ffee/7/0") == MIG_1


def test_a_legacy_mig_entry_of_no_instance_is_an_error(fake: FakeNvml) -> None:
    with pytest.raises(DeviceError, match="no MIG instance with GPU instance 9"):
        uuid_of(f"MIG-{C}/9/0")
