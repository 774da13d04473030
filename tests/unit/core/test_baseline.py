from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.models import BaselineConfig
from llenergymeasure.core.baseline import (
    UNAVAILABLE,
    BaselinePower,
    create_energy_breakdown,
    measure_baseline_power,
)
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement


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
