"""The thermal floor against the simulated NVML's scripted temperature."""

from __future__ import annotations

import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.config.measurement import ThermalFloorConfig
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlSampleSource
from llenergymeasure.core.thermal_floor import apply_thermal_floor

A = "GPU-aaaaaaaa-0000"
B = "GPU-bbbbbbbb-0000"
STABLE = ThermalFloorConfig(mode="stable_temperature", stable_for_s=10.0, timeout_s=60.0)


def gpus_on(monkeypatch: pytest.MonkeyPatch, *gpus: SimGpu) -> tuple[ManualClock, NvmlSampleSource]:
    clock = ManualClock()
    install(monkeypatch, FakeNvml(list(gpus), clock=clock.monotonic))
    indices = list(range(len(gpus)))
    source = NvmlSampleSource(open_cuda_devices(indices, visible=",".join(map(str, indices))))
    return clock, source


def run_floor(config: ThermalFloorConfig, clock: ManualClock, source: NvmlSampleSource | None):
    reader = None if source is None else lambda: list(source.temperatures_c().values())
    return apply_thermal_floor(
        config, reader, on_gpu=True, clock=clock.monotonic, sleep=clock.sleep
    )


def cooling(settled_at_s: float, start_c: float = 80.0, end_c: float = 50.0) -> Steps:
    """One degree less per second until `settled_at_s`, then flat."""
    steps = int(settled_at_s)
    slope = (start_c - end_c) / steps
    return Steps([(float(k), start_c - slope * k) for k in range(steps + 1)])


def test_the_wait_ends_once_the_temperature_is_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, source = gpus_on(monkeypatch, SimGpu(A, temperature_c=cooling(20.0)))
    outcome = run_floor(STABLE, clock, source)
    # flat from 20 s: the last 10 s are within 1 C at 30 s, not before
    assert outcome.mode == "stable_temperature" and outcome.stable is True
    assert outcome.waited_s == pytest.approx(30.0)
    assert outcome.warning is None


def test_every_gpu_must_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, source = gpus_on(
        monkeypatch,
        SimGpu(A, temperature_c=Steps.constant(45.0)),
        SimGpu(B, temperature_c=cooling(25.0)),
    )
    outcome = run_floor(STABLE, clock, source)
    # A alone is stable at 10 s; B reads 51 C at 24 s and 50 C from 25 s: within 1 C at 34 s
    assert outcome.stable is True and outcome.waited_s == pytest.approx(34.0)


def test_a_temperature_that_never_settles_times_out_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, source = gpus_on(monkeypatch, SimGpu(A, temperature_c=cooling(120.0, 90.0, 30.0)))
    outcome = run_floor(STABLE, clock, source)
    assert outcome.stable is False and outcome.waited_s == pytest.approx(60.0)
    assert outcome.warning is not None and outcome.warning.code == "thermal_floor_timeout"
    assert "60 s timeout" in outcome.warning.message


def test_without_a_gpu_temperature_it_waits_nothing_and_says_so() -> None:
    clock = ManualClock()
    outcome = run_floor(STABLE, clock, None)
    assert outcome.waited_s == 0.0 and clock.now_s == 0.0
    assert outcome.warning is not None and outcome.warning.code == "thermal_floor_unavailable"


def test_sleep_waits_its_seconds_or_the_default() -> None:
    clock = ManualClock()
    assert run_floor(ThermalFloorConfig(seconds=5.0), clock, None).waited_s == 5.0
    assert clock.now_s == pytest.approx(5.0)
    outcome = run_floor(ThermalFloorConfig(), clock, None)
    assert outcome.mode == "sleep" and outcome.waited_s == 60.0 and outcome.warning is None
