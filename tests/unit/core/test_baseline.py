from __future__ import annotations

import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.config.measurement import BaselineConfig, MeasurementConfig
from llenergymeasure.core.baseline import BaselinePower, Baselines, measure_baselines
from llenergymeasure.core.energy_accounting import account_energy
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def cpu_reading(joules: float | None, duration_s: float = 10.0) -> EnergyMeasurement:
    return EnergyMeasurement(
        method="rapl",
        host="h",
        devices=[DeviceEnergy(device_id="package-0", kind="cpu", scope="machine", energy_j=joules)],
        window_start_unix_s=0.0,
        window_end_unix_s=duration_s,
        duration_s=duration_s,
    )


def account(readings, baselines: Baselines, window_s: float = 10.0, gpus: bool = False):
    return account_energy(
        readings,
        baselines,
        window_s=window_s,
        window_start_unix_s=0.0,
        output_tokens=100,
        gpus_expected=gpus,
        gpu_problem=None,
        config=MeasurementConfig(),
    )


def test_above_idle_subtracts_the_baseline_over_the_energy_window_only() -> None:
    baselines = Baselines({"cpu": BaselinePower(20.0, 1.0, "fresh", "counter", 5.0, 0.0)})
    result = account([cpu_reading(500.0)], baselines, window_s=10.0)
    (cpu,) = result.components
    assert (cpu.energy_j, cpu.baseline_energy_j, cpu.above_idle_j) == (500.0, 200.0, 300.0)
    assert result.breakdown.raw_j == 500.0
    assert result.breakdown.adjusted_j == pytest.approx(300.0)
    assert result.breakdown.baseline_power_w == 20.0
    assert result.breakdown.baseline_energy_j == pytest.approx(200.0)
    assert result.breakdown.boundary == "cpu_dram"


def test_above_idle_clipped_at_zero_says_so_and_null_without_baseline() -> None:
    high = Baselines({"cpu": BaselinePower(100.0, 0.0, "cached", "counter", 5.0, 0.0)})
    clipped = account([cpu_reading(50.0)], high)
    assert clipped.breakdown.adjusted_j == 0.0
    assert [w.code for w in clipped.warnings] == ["above_idle_clipped"]
    assert "50.00 J are below the idle baseline's 1000.00 J" in clipped.warnings[0].message
    unavailable = account([cpu_reading(50.0)], Baselines())
    assert unavailable.breakdown.adjusted_j is None
    assert unavailable.breakdown.baseline_method == "unavailable"
    assert not unavailable.warnings


def test_fresh_then_cached_then_expired(tmp_path: Path) -> None:
    cache = tmp_path / "baseline.json"
    backend = CpuEstimateBackend(tdp_w=40.0)
    config = BaselineConfig(duration_s=0.25, cache_ttl_s=60, max_busy_share=1.0)
    fresh = measure_baselines([backend], config, cache).of("cpu")
    assert fresh.method == "fresh" and fresh.power_w is not None and fresh.std_w is not None
    assert fresh.source == "model" and fresh.duration_s == 0.25
    cached = measure_baselines([backend], config, cache).of("cpu")
    assert cached.method == "cached" and cached.power_w == fresh.power_w
    # An entry older than the TTL (the TTL itself unchanged) is measured afresh.
    entries = orjson.loads(cache.read_bytes())
    for entry in entries.values():
        entry["measured_at_unix_s"] -= 61.0
    cache.write_bytes(orjson.dumps(entries))
    assert measure_baselines([backend], config, cache).of("cpu").method == "fresh"


def test_the_cache_key_holds_the_baseline_duration(tmp_path: Path) -> None:
    cache = tmp_path / "baseline.json"
    backend = CpuEstimateBackend(tdp_w=40.0)
    measure_baselines(
        [backend], BaselineConfig(duration_s=0.25, cache_ttl_s=60, max_busy_share=1.0), cache
    )
    longer = measure_baselines(
        [backend], BaselineConfig(duration_s=0.5, cache_ttl_s=60, max_busy_share=1.0), cache
    )
    assert longer.of("cpu").method == "fresh"
    assert len(orjson.loads(cache.read_bytes())) == 2


def test_a_baseline_taken_on_a_busy_host_is_used_but_not_cached(tmp_path: Path) -> None:
    cache = tmp_path / "baseline.json"
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        result = measure_baselines(
            [CpuEstimateBackend(tdp_w=40.0)],
            BaselineConfig(duration_s=1.0, cache_ttl_s=60, max_busy_share=0.25),
            cache,
        )
    finally:
        burner.kill()
        burner.wait()
    assert result.of("cpu").method == "fresh"
    assert [w.code for w in result.warnings] == ["baseline_host_busy"]
    assert not cache.exists()


@pytest.mark.parametrize(
    "entry",
    [
        {"power_w": -50.0, "std_w": 1.0, "measured_at_unix_s": "now"},
        {"power_w": -50.0, "std_w": 1.0},
        {"power_w": "many", "std_w": 1.0},
        "not a mapping",
    ],
)
def test_a_malformed_cache_entry_is_absent(tmp_path: Path, entry: object) -> None:
    cache = tmp_path / "baseline.json"
    backend = CpuEstimateBackend(tdp_w=40.0)
    config = BaselineConfig(duration_s=0.25, cache_ttl_s=60, max_busy_share=1.0)
    (key,) = backend.baseline_keys
    if isinstance(entry, dict):
        entry = {**entry, "component": "cpu"}
        entry.setdefault("measured_at_unix_s", time.time())
    cache.write_bytes(orjson.dumps({f"{key}|0.25s": entry}))
    baseline = measure_baselines([backend], config, cache).of("cpu")
    assert baseline.method == "fresh" and baseline.power_w is not None and baseline.power_w >= 0


def _write_entries(cache: str, tdp_w: float) -> None:
    import llenergymeasure.core.baseline as baseline_module

    for _ in range(5):
        config = BaselineConfig(duration_s=0.05, cache_ttl_s=60, max_busy_share=1.0)
        baseline_module.measure_baselines([CpuEstimateBackend(tdp_w=tdp_w)], config, Path(cache))


def test_concurrent_writers_keep_each_others_entries(tmp_path: Path) -> None:
    cache = tmp_path / "baseline.json"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_entries, args=(str(cache), t)) for t in (30, 40)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0]
    keys = orjson.loads(cache.read_bytes())
    assert any("tdp=30" in k for k in keys) and any("tdp=40" in k for k in keys)


def test_disabled_baseline_is_unavailable() -> None:
    off = BaselineConfig(enabled=False)
    assert measure_baselines([CpuEstimateBackend()], off).of("cpu").power_w is None
    assert measure_baselines([], BaselineConfig()).of("gpu").method == "unavailable"


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
    result = measure_baselines([backend], BaselineConfig(duration_s=1.0), tmp_path / "b.json")
    baseline = result.of("gpu")
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
    config = BaselineConfig(duration_s=1.0, cache_ttl_s=3600, max_busy_share=1.0)
    gpus = [SimGpu(A, power_w=Steps.constant(60.0)), SimGpu(B, power_w=Steps.constant(45.0))]
    both = nvml_backend(monkeypatch, gpus, ManualClock(), "0,1")
    assert measure_baselines([both], config, cache).of("gpu").method == "fresh"
    keys = set(orjson.loads(cache.read_bytes()))
    assert keys == {f"{both.host}|gpu|{A}|1s", f"{both.host}|gpu|{B}|1s"}
    only_b = nvml_backend(monkeypatch, gpus, ManualClock(), "1")
    cached = measure_baselines([only_b], config, cache).of("gpu")
    assert cached.method == "cached" and cached.power_w == pytest.approx(45.0)


def test_gpu_baseline_subtraction_uses_the_energy_window_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    # idle 60 W, model load at 250 W from 2 s, inference at 300 W from 3 s to 8 s
    profile = Steps([(0.0, 60.0), (2.0, 250.0), (3.0, 300.0), (8.0, 60.0)])
    backend = nvml_backend(monkeypatch, [SimGpu(A, power_w=profile)], clock, "0")
    baselines = measure_baselines([backend], BaselineConfig(duration_s=1.0))
    assert baselines.of("gpu").power_w == pytest.approx(60.0)
    clock.now_s = 3.0
    backend.start()
    clock.advance(5.0)
    measured = backend.stop()
    result = account([measured], baselines, window_s=measured.duration_s, gpus=True)
    assert result.breakdown.raw_j == 1500.0
    assert result.breakdown.adjusted_j == pytest.approx(1500.0 - 60.0 * 5.0)
    assert result.breakdown.boundary == "gpu"


def test_nvml_baseline_unreadable_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    fake = install(monkeypatch, FakeNvml([SimGpu(A)], clock=clock.monotonic))
    devices = open_cuda_devices([0], visible="0")
    backend = NvmlBackend(devices, clock=clock.monotonic, sleep=clock.sleep)
    fake.fail("nvmlDeviceGetTotalEnergyConsumption", pynvml.NVMLError_GpuIsLost, start_s=0.5)
    baseline = measure_baselines([backend], BaselineConfig(duration_s=1.0)).of("gpu")
    assert baseline.method == "unavailable" and baseline.power_w is None


def test_an_unusable_cache_directory_is_a_cache_miss_not_a_crash(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the cache directory should be")
    config = BaselineConfig(duration_s=0.25, cache_ttl_s=60, max_busy_share=1.0)
    baseline = measure_baselines([CpuEstimateBackend(tdp_w=40.0)], config, blocker / "b.json")
    assert baseline.of("cpu").method == "fresh"


def test_a_machine_level_cache_key_names_the_machine_not_its_hostname() -> None:
    from llenergymeasure.core.host import host_identity

    (key,) = CpuEstimateBackend(tdp_w=40.0).baseline_keys
    assert key.startswith(host_identity() + "|")
