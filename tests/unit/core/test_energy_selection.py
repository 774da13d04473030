from __future__ import annotations

import time
from pathlib import Path

import pytest

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.core.energy_backends import select_energy_backend
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.errors import DeviceError

HAS_RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj").exists()


def test_none_means_no_backend() -> None:
    assert select_energy_backend(EnergyConfig(backend="none")) is None


@pytest.mark.skipif(HAS_RAPL, reason="this machine has RAPL, so auto picks it")
def test_auto_falls_back_to_a_labelled_estimate() -> None:
    backend = select_energy_backend(EnergyConfig(backend="auto"))
    assert isinstance(backend, CpuEstimateBackend)


@pytest.mark.skipif(HAS_RAPL, reason="this machine has RAPL")
def test_explicit_rapl_without_counter_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="'rapl' is unavailable"):
        select_energy_backend(EnergyConfig(backend="rapl"))


def test_explicit_nvml_unavailable_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="'nvml'"):
        select_energy_backend(EnergyConfig(backend="nvml"))


def test_estimate_grows_with_busy_time_and_says_it_is_an_estimate() -> None:
    backend = CpuEstimateBackend(tdp_w=100.0)
    backend.start()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:  # keep one core busy
        sum(range(1000))
    measurement = backend.stop()
    assert measurement.is_estimate
    assert measurement.devices[0].scope == "machine"
    assert any("100 W (configured)" in a for a in measurement.assumptions)
    per_core_w = 100.0 / backend.logical_cores
    # one busy core for 0.3 s, other load on the host can only add to it
    assert measurement.total_j >= 0.8 * per_core_w * 0.3
    assert measurement.total_j <= 100.0 * measurement.duration_s * 1.05
