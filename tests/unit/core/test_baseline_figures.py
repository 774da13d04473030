"""Baseline figures a unit mix-up or a stale cache would change: known idle powers."""

from __future__ import annotations

import math
import time
from pathlib import Path

import orjson
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.config.measurement import BaselineConfig
from llenergymeasure.core.baseline import BaselinePower, measure_baselines
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def nvml_backend(
    monkeypatch: pytest.MonkeyPatch, gpus: list[SimGpu], visible: str | None = None
) -> NvmlBackend:
    """The backend of the GPUs in `visible` (CUDA_VISIBLE_DEVICES; default all of them)."""
    clock = ManualClock()
    install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    visible = visible or ",".join(map(str, range(len(gpus))))
    devices = open_cuda_devices(range(len(visible.split(","))), visible=visible)
    return NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)


def baseline_of(
    backend: EnergyBackend, config: BaselineConfig, cache: Path | None = None
) -> BaselinePower:
    """The idle baseline of the backend's one component."""
    (component,) = backend.components
    return measure_baselines([backend], config, cache).of(component)


def write_cache_entry(path: Path, key: str, power_w: float, age_s: float) -> None:
    """A cache entry for a one-second baseline of GPU `key`, measured `age_s` ago."""
    entry = {
        "component": "gpu",
        "source": "power_reading",
        "power_w": power_w,
        "std_w": 0.5,
        "method": "fresh",
        "duration_s": 1.0,
        "measured_at_unix_s": time.time() - age_s,
    }
    path.write_bytes(orjson.dumps({f"{key}|1s": entry}))


def test_a_cached_baseline_older_than_its_ttl_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "baseline.json"
    backend = nvml_backend(monkeypatch, [SimGpu(A, power_w=Steps.constant(100.0))])
    (key,) = backend.baseline_keys
    config = BaselineConfig(duration_s=1.0, cache_ttl_s=3600, max_busy_share=1.0)
    write_cache_entry(cache, key, power_w=999.0, age_s=60.0)
    young = baseline_of(backend, config, cache)
    assert (young.method, young.power_w) == ("cached", 999.0)
    write_cache_entry(cache, key, power_w=999.0, age_s=7200.0)
    expired = baseline_of(backend, config, cache)
    assert expired.method == "fresh" and expired.power_w == pytest.approx(100.0)


def test_a_baseline_is_cached_only_when_every_gpu_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = tmp_path / "baseline.json"
    config = BaselineConfig(duration_s=1.0, cache_ttl_s=3600, max_busy_share=1.0)
    gpus = [SimGpu(A, power_w=Steps.constant(60.0)), SimGpu(B, power_w=Steps.constant(45.0))]
    only_b = baseline_of(nvml_backend(monkeypatch, gpus, "1"), config, cache)
    assert only_b.method == "fresh" and only_b.power_w == pytest.approx(45.0)
    both = baseline_of(nvml_backend(monkeypatch, gpus, "0,1"), config, cache)
    assert both.method == "fresh"
    assert both.power_w == pytest.approx(105.0)  # not B's cached 45 W alone
    again = baseline_of(nvml_backend(monkeypatch, gpus, "0,1"), config, cache)
    assert again.method == "cached" and again.power_w == pytest.approx(105.0)


def test_the_spread_of_several_gpus_is_the_root_sum_of_squares(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each GPU measured alone, then both: means add, spreads add in quadrature."""
    gpus = [
        SimGpu(A, power_w=Steps([(0.0, 58.0), (0.5, 62.0)])),
        SimGpu(B, power_w=Steps([(0.0, 40.0), (0.5, 50.0)])),
    ]
    config = BaselineConfig(duration_s=1.0)
    alone = [baseline_of(nvml_backend(monkeypatch, gpus, v), config) for v in ("0", "1")]
    both = baseline_of(nvml_backend(monkeypatch, gpus), config)
    std_a, std_b = (b.std_w for b in alone)
    assert std_a > 0.5 and std_b > 0.5 and std_a != pytest.approx(std_b)
    assert both.power_w == pytest.approx(alone[0].power_w + alone[1].power_w)
    assert both.std_w == pytest.approx(math.hypot(std_a, std_b))  # not std_a + std_b


class HundredWattBackend(EnergyBackend):
    """A machine-level source that draws exactly 100 W: energy is 100 x the window."""

    method = "rapl"

    def _begin(self) -> None:
        pass

    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement:
        device = DeviceEnergy(
            device_id="package-0", kind="cpu", scope="machine", energy_j=100.0 * duration_s
        )
        return EnergyMeasurement(
            method=self.method,
            host=self.host,
            devices=[device],
            window_start_unix_s=window_start_unix_s,
            window_end_unix_s=window_end_unix_s,
            duration_s=duration_s,
        )


def test_idle_power_of_a_counter_backend_is_in_watts() -> None:
    baseline = baseline_of(HundredWattBackend(), BaselineConfig(duration_s=0.25))
    assert baseline.method == "fresh"
    assert baseline.power_w == pytest.approx(100.0)  # not 5 J per 50 ms sub-window
    assert baseline.std_w == pytest.approx(0.0, abs=1e-6)
