"""A device that could not be read makes a total unknown, never 0 J, and says so.

Two simulated GPUs, one of which loses its energy counter: a test with a single device
could not tell "None makes the total None" from "None is skipped".
"""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.config.measurement import MeasurementConfig
from llenergymeasure.core.baseline import BaselinePower, Baselines
from llenergymeasure.core.energy_accounting import account_energy
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def test_one_unread_gpu_of_two_makes_the_total_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    gpus = [SimGpu(A, power_w=Steps.constant(100.0)), SimGpu(B, power_w=Steps.constant(70.0))]
    fake = install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    backend = NvmlBackend(
        open_cuda_devices([0, 1], visible="0,1"), clock=clock.monotonic, sleep=clock.sleep
    )
    fake.fail("nvmlDeviceGetTotalEnergyConsumption", start_s=1.0, uuid=A)
    backend.start()
    clock.advance(2.0)
    measured = backend.stop()
    assert [d.energy_j for d in measured.devices] == [None, pytest.approx(140.0)]
    assert measured.total_j is None  # not 140 J
    account = account_energy(
        [measured],
        Baselines({"gpu": BaselinePower(power_w=50.0, std_w=1.0, method="fresh")}),
        window_s=2.0,
        window_start_unix_s=0.0,
        output_tokens=10,
        gpus_expected=True,
        gpu_problem=None,
        config=MeasurementConfig(),
    )
    (gpu,) = account.components
    assert gpu.energy_j is None and gpu.above_idle_j is None
    assert account.breakdown.raw_j is None and account.breakdown.adjusted_j is None
    warnings = collect_measurement_warnings(
        duration_s=2.0, power_readings={0: 20, 1: 20}, readings=[measured], energy_requested=True
    )
    (incomplete,) = [w for w in warnings if w.code == "energy_incomplete"]
    assert A in incomplete.message and B not in incomplete.message
