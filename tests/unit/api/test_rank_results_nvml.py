"""`RankResults` of a one-process job on the simulated NVML: what each rank records."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import llenergymeasure as llem
from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.domain.experiment import RawProcessResult

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ranks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clock: ManualClock) -> llem.RankResults:
    """GPU A draws 100 W, GPU B 50 W; a one-process job's RankResults."""
    gpus = [SimGpu(A, power_w=Steps.constant(100.0)), SimGpu(B, power_w=Steps.constant(50.0))]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{A},{B}")
    install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))
    return llem.RankResults("one-rank", model_name="my-model", results_dir=tmp_path)


def test_a_rank_records_its_own_gpus_its_interval_and_its_baseline(
    ranks: llem.RankResults, clock: ManualClock
) -> None:
    with ranks.measure(devices=[1], sample_interval_ms=20, baseline=0.3) as measured:
        time.sleep(0.15)  # real time for the sampling process's ticks
        clock.advance(2.0)
    path = ranks.write(measured, output_tokens=8, num_requests=1)
    result = ranks.finish()
    raw = RawProcessResult.model_validate_json(path.read_bytes())
    assert [g.uuid for g in raw.environment.gpus] == [B]  # not every GPU the process sees
    assert raw.device == "cuda:1" and raw.sample_interval_ms == 20
    (gpu,) = [c for c in raw.energy_components if c.component == "gpu"]
    assert gpu.device_ids == [B] and gpu.energy_j == 50.0 * 2
    (cpu,) = [c for c in raw.energy_components if c.component == "cpu"]
    assert cpu.baseline_duration_s == 0.3 and cpu.above_idle_j is not None
    assert raw.thermal_throttle is not None and raw.thermal_throttle.detected is False
    assert raw.extended is not None and raw.extended.gpu_mem_peak_mb == 512.0
    assert result is not None and result.aggregation.gpu_attribution_verified


def test_write_describes_the_measurement_it_is_given(
    ranks: llem.RankResults, clock: ManualClock
) -> None:
    with ranks.measure(devices=[1], sample_interval_ms=20) as measured:
        time.sleep(0.1)
        clock.advance(2.0)
    ranks.measure(devices=[0], sample_interval_ms=50)  # another window, not written
    raw = RawProcessResult.model_validate_json(
        ranks.write(measured, output_tokens=8, num_requests=1).read_bytes()
    )
    assert raw.device == "cuda:1" and raw.sample_interval_ms == 20
    assert [g.uuid for g in raw.environment.gpus] == [B]


def test_a_plain_llem_measure_window_is_written_with_its_gpu(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock = ManualClock()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", A)
    install(monkeypatch, FakeNvml([SimGpu(A)], clock=clock.monotonic))
    ranks = llem.RankResults("one-rank", model_name="my-model", results_dir=tmp_path)
    with llem.measure(devices=[0], sample_interval_ms=20) as measured:
        time.sleep(0.1)
        clock.advance(2.0)
    raw = RawProcessResult.model_validate_json(
        ranks.write(measured, output_tokens=8, num_requests=1).read_bytes()
    )
    assert raw.energy_breakdown.boundary == "gpu"
    assert raw.device == "cuda:0" and raw.energy_method == "nvml_counter"
