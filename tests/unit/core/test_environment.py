"""The environment snapshot: GPU fields read through the simulated NVML."""

from __future__ import annotations

import pynvml
import pytest

from fakes.nvml import FakeNvml, SimGpu, SimMig, Steps, install
from llenergymeasure.core.environment import collect_environment

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"
MIG = "MIG-cccccccc-2222"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    gpus = [
        SimGpu(A, temperature_c=Steps.constant(41.0)),
        SimGpu(B, persistence_mode=False, power_limit_w=500.0, mig=[SimMig(MIG)]),
    ]
    return install(monkeypatch, FakeNvml(gpus))


def test_gpu_fields_of_the_process_device(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", A)
    env = collect_environment([0])
    (gpu,) = env.gpus
    assert (gpu.index, gpu.uuid, gpu.name) == (0, A, "NVIDIA H100 80GB HBM3")
    assert gpu.vram_mb == 81559.0 and gpu.compute_capability == "9.0" and not gpu.is_mig
    assert (gpu.power_limit_w, gpu.default_power_limit_w) == (700.0, 700.0)
    assert gpu.persistence_mode is True
    assert (gpu.sm_clock_mhz, gpu.memory_clock_mhz, gpu.temperature_c) == (1980.0, 2619.0, 41.0)
    assert (env.driver_version, env.cuda_driver_version) == ("550.54.15", "12.4")
    assert "1x NVIDIA H100 80GB HBM3 (driver 550.54.15, persistence on)" in env.summary_line
    assert env.cpu_count and env.python_version and env.llenergymeasure_version


def test_mig_instance_is_described_as_such(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", MIG)
    (gpu,) = collect_environment([0]).gpus
    assert gpu.is_mig and gpu.uuid == MIG and gpu.parent_uuid == B and gpu.index == 1
    assert gpu.vram_mb == 9856.0  # the instance's memory
    assert gpu.power_limit_w == 500.0 and gpu.persistence_mode is False  # the parent's


def test_every_visible_gpu_by_default(fake: FakeNvml, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{B},{A}")
    fake.gpus[1].mig = []
    env = collect_environment()
    assert [g.uuid for g in env.gpus] == [B, A]
    assert "persistence off" in env.summary_line


def test_cpu_process_reads_no_gpu(fake: FakeNvml) -> None:
    assert collect_environment([]).gpus == []
    assert fake.calls["nvmlInit"] == 0


def test_no_driver_means_no_gpu_section(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml([], init_error=pynvml.NVMLError_DriverNotLoaded))
    env = collect_environment([0])
    assert env.gpus == [] and env.driver_version is None
