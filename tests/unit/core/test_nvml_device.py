"""The NVML helper against the simulated NVML: start-up, errors, device mapping."""

from __future__ import annotations

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import (
    open_cuda_devices,
    parse_cuda_visible_devices,
    visible_cuda_ordinals,
)
from llenergymeasure.core.energy_backends.nvml_library import init_nvml, nvml_available
from llenergymeasure.errors import DeviceError

A, B, C = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111", "GPU-cccccccc-2222"
MIG = "MIG-dddddddd-3333"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    gpus = [SimGpu(A), SimGpu(B), SimGpu(C, mig=[SimMig(MIG)])]
    return install(monkeypatch, FakeNvml(gpus, clock=ManualClock().monotonic))


def uuids(devices) -> list[str]:
    return [d.uuid for d in devices]


def test_parse_follows_cuda_rules() -> None:
    assert parse_cuda_visible_devices(None) is None
    assert parse_cuda_visible_devices("") == []
    assert parse_cuda_visible_devices(" 2, 0 ") == ["2", "0"]
    assert parse_cuda_visible_devices("0,2,-1,1") == ["0", "2"]  # CUDA stops at -1
    assert parse_cuda_visible_devices(f"{B},{MIG}") == [B, MIG]


def test_indices_map_through_cuda_visible_devices(fake: FakeNvml) -> None:
    assert uuids(open_cuda_devices([0, 1], visible="1,0")) == [B, A]
    only_second = open_cuda_devices([0], visible="1")
    assert only_second[0].cuda_ordinal == 0 and only_second[0].nvml_index == 1


def test_unset_means_every_gpu_in_nvml_order(
    fake: FakeNvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake.gpus[2].mig = []
    assert visible_cuda_ordinals(visible=None) == [0, 1, 2]
    assert uuids(open_cuda_devices([1])) == [B]


def test_gpu_uuids_map_to_their_device(fake: FakeNvml) -> None:
    devices = open_cuda_devices([0, 1], visible=f"{B},{A}")
    assert uuids(devices) == [B, A]
    assert [d.nvml_index for d in devices] == [1, 0]
    assert not any(d.is_mig for d in devices)


def test_mig_uuid_is_flagged_and_reads_its_parent(fake: FakeNvml) -> None:
    (device,) = open_cuda_devices([0], visible=MIG)
    assert device.uuid == MIG and device.is_mig
    assert device.parent_uuid == C and device.power_uuid == C
    assert device.nvml_index == 2
    assert device.memory_mb() == (13.0, 9856.0)  # the instance's memory
    assert device.power_w() == 70.0  # the parent's power
    assert device.sm_utilisation_pct() is None  # not supported on a MIG handle


def test_gpu_in_mig_mode_named_by_index_is_refused(fake: FakeNvml) -> None:
    with pytest.raises(DeviceError, match="MIG mode.*MIG- UUID"):
        open_cuda_devices([0], visible="2")


def test_unknown_uuid_and_invisible_ordinal_are_clear_errors(fake: FakeNvml) -> None:
    with pytest.raises(DeviceError, match="nvidia-smi -L") as info:
        open_cuda_devices([0], visible="GPU-nothere")
    assert isinstance(info.value.__cause__, pynvml.NVMLError_NotFound)
    with pytest.raises(DeviceError, match="CUDA device 1 is not visible"):
        open_cuda_devices([1], visible="0")


def test_indices_on_mixed_models_need_pci_order(fake: FakeNvml) -> None:
    fake.gpus[1].name = "NVIDIA A100-SXM4-80GB"
    with pytest.raises(DeviceError, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        open_cuda_devices([0], visible="1", device_order="")
    pci = open_cuda_devices([0], visible="1", device_order="PCI_BUS_ID")
    assert uuids(pci) == [B]
    assert uuids(open_cuda_devices([0], visible=B, device_order="")) == [B]


def test_start_failure_is_translated_once_with_a_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound))
    assert not nvml_available()
    with pytest.raises(DeviceError, match="install the driver") as info:
        init_nvml()
    assert isinstance(info.value.__cause__, pynvml.NVMLError_LibraryNotFound)


def test_nvml_is_started_once(fake: FakeNvml) -> None:
    open_cuda_devices([0], visible="0")
    open_cuda_devices([1], visible="0,1")
    assert fake.calls["nvmlInit"] == 1


def test_calls_before_init_raise_like_real_nvml() -> None:
    fake = FakeNvml([SimGpu(A)])
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
    fake.nvmlInit()
    assert fake.nvmlDeviceGetCount() == 1
    fake.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()


def test_fake_counter_is_stepwise_and_average_lags() -> None:
    clock = ManualClock()
    fake = FakeNvml([SimGpu(A, power_w=Steps([(0.0, 100.0), (2.0, 300.0)]))], clock=clock.monotonic)
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    start_mj = fake.nvmlDeviceGetTotalEnergyConsumption(handle)
    clock.advance(0.05)
    assert fake.nvmlDeviceGetTotalEnergyConsumption(handle) == start_mj  # not updated yet
    clock.advance(0.05)
    assert fake.nvmlDeviceGetTotalEnergyConsumption(handle) == start_mj + 10_000  # 100 W x 0.1 s
    clock.advance(2.2)  # t = 2.3 s: 0.3 s into the 300 W step
    assert fake.nvmlDeviceGetPowerUsage(handle) == 160_000  # (0.7 x 100 + 0.3 x 300) / 1 s
    instant = fake.nvmlDeviceGetFieldValues(handle, [pynvml.NVML_FI_DEV_POWER_INSTANT])[0]
    assert instant.nvmlReturn == pynvml.NVML_SUCCESS and instant.value.uiVal == 300_000


def test_unmodelled_nvml_functions_are_not_silently_faked() -> None:
    fake = FakeNvml([SimGpu(A)])
    assert fake.NVML_FI_DEV_POWER_INSTANT == pynvml.NVML_FI_DEV_POWER_INSTANT
    assert fake.NVMLError_NotSupported is pynvml.NVMLError_NotSupported
    with pytest.raises(AttributeError, match="does not model"):
        _ = fake.nvmlDeviceGetPcieThroughput
