"""GPU samples carry the NVML index of the physical GPU, not the process's CUDA ordinal.

With CUDA_VISIBLE_DEVICES remapping, `cuda:0` of a process is NVML GPU 2 or 3: the
sidecar's `gpu_index` and the power integral (which selects samples by NVML index)
depend on the right one.
"""

from __future__ import annotations

import time

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.window import MeasurementWindow

UUIDS = [f"GPU-{k}{k}{k}{k}{k}{k}{k}{k}-000{k}" for k in range(4)]


def test_samples_of_remapped_gpus_carry_their_nvml_index(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [SimGpu(u, power_w=Steps.constant(60.0 + 10 * k)) for k, u in enumerate(UUIDS)]
    install(monkeypatch, FakeNvml(gpus, clock=ManualClock().monotonic))
    source = NvmlSampleSource(open_cuda_devices([0, 1], visible="3,2"))
    samples = source.read(0.0)
    assert [(s.device_index, s.power_w) for s in samples] == [(3, 90.0), (2, 80.0)]


def test_power_integral_of_a_remapped_gpu_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = [SimGpu(u, has_energy_counter=False) for u in UUIDS]
    gpus[2] = SimGpu(UUIDS[2], power_w=Steps.constant(100.0), has_energy_counter=False)
    install(monkeypatch, FakeNvml(gpus))
    devices = open_cuda_devices([0], visible="2")
    backend = NvmlBackend(devices, interval_ms=20)
    assert backend.method == "nvml_power_integral"
    window = MeasurementWindow([backend], [NvmlSampleSource(devices)], 20)
    (measured,) = window.run(lambda: time.sleep(0.4)).readings
    assert measured.devices[0].device_id == UUIDS[2]
    assert measured.total_j == pytest.approx(100.0 * measured.duration_s, rel=0.2)
