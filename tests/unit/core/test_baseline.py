from __future__ import annotations

import statistics
from pathlib import Path

import orjson
import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.config.models import BaselineConfig
from llenergymeasure.core.baseline import (
    UNAVAILABLE,
    BaselinePower,
    create_energy_breakdown,
    measure_baseline_power,
)
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.energy_backends.nvml_device import open_cuda_devices
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def measurement(joules: float | None, duration_s: float = 10.0) -> EnergyMeasurement:
    return EnergyMeasurement(
        method="rapl",
        host="h",
        devices=[DeviceEnergy(device_id="package-0", kind="cpu", scope="machine", energy_j=joules)],
        window_start_unix_s=0.0,
        window_end_unix_s=duration_s,
        duration_s=duration_s,
    )


def test_adjusted_subtracts_baseline_over_the_inference_window_only() -> None:
    baseline = BaselinePower(power_w=20.0, std_w=1.0, method="fresh")
    breakdown = create_energy_breakdown(measurement(500.0), baseline, inference_duration_s=10.0)
    assert breakdown.raw_j == 500.0
    assert breakdown.adjusted_j == pytest.approx(300.0)
    assert breakdown.baseline_power_w == 20.0


def test_adjusted_never_negative_and_null_without_baseline() -> None:
    baseline = BaselinePower(power_w=100.0, std_w=0.0, method="cached")
    assert create_energy_breakdown(measurement(50.0), baseline, 10.0).adjusted_j == 0.0
    unavailable = create_energy_breakdown(measurement(50.0), UNAVAILABLE, 10.0)
    assert unavailable.adjusted_j is None and unavailable.baseline_method == "unavailable"
    assert create_energy_breakdown(None, UNAVAILABLE, 10.0).raw_j is None


def test_fresh_then_cached_then_expired(tmp_path: Path) -> None:
    cache = tmp_path / "baseline.json"
    backend = CpuEstimateBackend(tdp_w=40.0)
    config = BaselineConfig(duration_s=0.25, cache_ttl_s=3600)
    fresh = measure_baseline_power(backend, config, cache)
    assert fresh.method == "fresh" and fresh.power_w is not None and fresh.std_w is not None
    assert 0 <= fresh.power_w <= 40.0
    cached = measure_baseline_power(backend, config, cache)
    assert cached.method == "cached" and cached.power_w == fresh.power_w
    no_cache = measure_baseline_power(backend, config.model_copy(update={"cache_ttl_s": 0}), cache)
    assert no_cache.method == "fresh"


def test_disabled_or_without_backend_is_unavailable() -> None:
    assert measure_baseline_power(None, BaselineConfig()).method == "unavailable"
    off = BaselineConfig(enabled=False)
    assert measure_baseline_power(CpuEstimateBackend(), off).power_w is None


def nvml_backend(monkeypatch: pytest.MonkeyPatch, gpus: list, clock, visible: str):
    install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    devices = open_cuda_devices(range(len(visible.split(","))), visible=visible)
    return NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)


def test_nvml_baseline_is_the_counter_over_sub_windows_per_gpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = ManualClock()
    idle = Steps([(0.0, 58.0), (0.5, 62.0)])
    gpus = [SimGpu(A, power_w=idle), SimGpu(B, power_w=Steps.constant(45.0))]
    backend = nvml_backend(monkeypatch, gpus, clock, "0,1")
    baseline = measure_baseline_power(backend, BaselineConfig(duration_s=1.0), tmp_path / "b.json")
    assert baseline.method == "fresh"
    # five 0.2 s sub-windows, each closed just after the counter's next 100 ms update:
    # 0.1-0.4 s at 58 W, 0.4-0.7 s two thirds at 62 W, then 62 W to 1.6 s
    sub_windows_w = [58.0, (58.0 + 2 * 62.0) / 3, 62.0, 62.0, 62.0]
    assert baseline.power_w == pytest.approx((58.0 * 0.4 + 62.0 * 1.1) / 1.5 + 45.0)
    assert baseline.std_w == pytest.approx(statistics.stdev(sub_windows_w), rel=1e-6)
    assert clock.now_s == pytest.approx(1.6)


def test_nvml_baseline_is_cached_per_gpu_uuid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "baseline.json"
    config = BaselineConfig(duration_s=1.0, cache_ttl_s=3600)
    gpus = [SimGpu(A, power_w=Steps.constant(60.0)), SimGpu(B, power_w=Steps.constant(45.0))]
    both = nvml_backend(monkeypatch, gpus, ManualClock(), "0,1")
    assert measure_baseline_power(both, config, cache).method == "fresh"
    keys = set(orjson.loads(cache.read_bytes()))
    assert keys == {f"{both.host}|gpu|{A}", f"{both.host}|gpu|{B}"}
    only_b = nvml_backend(monkeypatch, gpus, ManualClock(), "1")
    cached = measure_baseline_power(only_b, config, cache)
    assert cached.method == "cached" and cached.power_w == pytest.approx(45.0)


def test_baseline_subtraction_uses_the_inference_window_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    # idle 60 W, model load at 250 W from 2 s, inference at 300 W from 3 s to 8 s
    profile = Steps([(0.0, 60.0), (2.0, 250.0), (3.0, 300.0), (8.0, 60.0)])
    backend = nvml_backend(monkeypatch, [SimGpu(A, power_w=profile)], clock, "0")
    baseline = measure_baseline_power(backend, BaselineConfig(duration_s=1.0))
    assert baseline.power_w == pytest.approx(60.0)
    clock.now_s = 3.0
    backend.start()
    clock.advance(5.0)
    measured = backend.stop()
    breakdown = create_energy_breakdown(measured, baseline, measured.duration_s)
    assert breakdown.raw_j == 1500.0
    assert breakdown.adjusted_j == pytest.approx(1500.0 - 60.0 * 5.0)
    assert breakdown.baseline_method == "fresh"


def test_nvml_baseline_unreadable_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    fake = install(monkeypatch, FakeNvml([SimGpu(A)], clock=clock.monotonic))
    devices = open_cuda_devices([0], visible="0")
    backend = NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)
    fake.fail("nvmlDeviceGetTotalEnergyConsumption", pynvml.NVMLError_GpuIsLost, start_s=0.5)
    baseline = measure_baseline_power(backend, BaselineConfig(duration_s=1.0))
    assert baseline.method == "unavailable" and baseline.power_w is None
