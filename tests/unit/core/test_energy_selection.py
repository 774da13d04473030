from __future__ import annotations

import time
from pathlib import Path

import pynvml
import pytest

from fakes.nvml import FakeNvml, SimGpu, install
from llenergymeasure.config.measurement import EnergyConfig, MeasurementConfig
from llenergymeasure.core.baseline import Baselines
from llenergymeasure.core.device import cuda_ordinals
from llenergymeasure.core.energy_accounting import account_energy
from llenergymeasure.core.energy_backends import select_energy_backends
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.energy_backends.rapl import RaplBackend
from llenergymeasure.errors import DeviceError

HAS_RAPL = Path("/sys/class/powercap/intel-rapl:0/energy_uj").exists()


HOST_BACKENDS = (RaplBackend, CpuEstimateBackend)


def test_none_means_no_backend() -> None:
    assert select_energy_backends(EnergyConfig(backend="none")).backends == []


@pytest.mark.skipif(HAS_RAPL, reason="this machine has RAPL, so auto picks it")
def test_auto_falls_back_to_a_labelled_estimate() -> None:
    (backend,) = select_energy_backends(EnergyConfig(backend="auto")).backends
    assert isinstance(backend, CpuEstimateBackend)


@pytest.mark.skipif(HAS_RAPL, reason="this machine has RAPL")
def test_explicit_rapl_without_counter_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="'rapl' is unavailable"):
        select_energy_backends(EnergyConfig(backend="rapl"))


def test_explicit_nvml_unavailable_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="'nvml' needs a CUDA device"):
        select_energy_backends(EnergyConfig(backend="nvml"))


def test_auto_on_a_gpu_measures_the_gpu_and_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml([SimGpu("GPU-a"), SimGpu("GPU-b")]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    sources = select_energy_backends(EnergyConfig(backend="auto", sample_interval_ms=50), [0])
    gpu, host = sources.backends
    assert isinstance(gpu, NvmlBackend) and isinstance(host, HOST_BACKENDS)
    assert gpu.method == "nvml_counter" and gpu.device_ids == ["GPU-b"]
    assert gpu.interval_ms == 50 and sources.gpu_problem is None


def test_a_source_that_reads_no_gpu_still_opens_the_gpus_for_the_sampler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch, FakeNvml([SimGpu("GPU-a"), SimGpu("GPU-b")]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    sources = select_energy_backends(EnergyConfig(backend="estimate"), [0])
    (host,) = sources.backends
    assert isinstance(host, CpuEstimateBackend)
    assert [d.uuid for d in sources.gpus] == ["GPU-b"]
    assert sources.gpu_sample_source() is not None
    assert sources.gpu_problem == "measurement.energy.backend is estimate, which reads no GPU"
    none = select_energy_backends(EnergyConfig(backend="none"), [0])
    assert none.backends == [] and none.gpu_problem is None and len(none.gpus) == 1


def test_auto_on_cpu_never_asks_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install(monkeypatch, FakeNvml([SimGpu("GPU-a")]))
    (backend,) = select_energy_backends(EnergyConfig(backend="auto"), []).backends
    assert isinstance(backend, HOST_BACKENDS)
    assert fake.calls["nvmlInit"] == 0


def test_a_gpu_process_without_nvml_reports_no_gpu_energy_not_cpu_energy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    install(monkeypatch, FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound))
    sources = select_energy_backends(EnergyConfig(backend="auto"), [0])
    (host,) = sources.backends
    assert isinstance(host, HOST_BACKENDS)
    assert "libnvidia-ml" in (sources.gpu_problem or "")
    host.start()
    reading = host.stop()
    account = account_energy(
        [reading],
        Baselines(),
        window_s=reading.duration_s,
        window_start_unix_s=reading.window_start_unix_s,
        output_tokens=10,
        gpus_expected=True,
        gpu_problem=sources.gpu_problem,
        config=MeasurementConfig(),
    )
    boundaries = {b.name: b for b in account.boundaries}
    assert boundaries["gpu"].energy_j is None and boundaries["node"].energy_j is None
    assert boundaries["cpu_dram"].energy_j == reading.total_j
    assert account.breakdown.boundary == "gpu" and account.breakdown.raw_j is None
    gpu = next(c for c in account.components if c.component == "gpu")
    assert gpu.energy_j is None and gpu.method == "none"
    (warning,) = [w for w in account.warnings if w.code == "gpu_energy_unavailable"]
    assert "libnvidia-ml" in warning.message


def test_explicit_nvml_without_a_driver_says_how_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound))
    with pytest.raises(DeviceError, match="install the driver or set measurement.energy.backend"):
        select_energy_backends(EnergyConfig(backend="nvml"), [0])


def test_process_owns_the_cuda_device_it_runs_on() -> None:
    assert cuda_ordinals("cpu") == []
    assert cuda_ordinals("cuda:1") == [1]


def test_estimate_grows_with_busy_time_and_says_it_is_an_estimate() -> None:
    backend = CpuEstimateBackend(tdp_w=100.0)
    backend.start()
    end = time.monotonic() + 0.3
    while time.monotonic() < end:  # keep one core busy
        sum(range(1000))
    measurement = backend.stop()
    assert measurement.is_estimate
    assert measurement.devices[0].scope == "machine"
    assert any("100 W (configured" in a for a in measurement.assumptions)
    assert measurement.tdp_source == "configured"
    per_core_w = 100.0 / backend.logical_cores
    # one busy core for 0.3 s, other load on the host can only add to it
    assert measurement.total_j >= 0.8 * per_core_w * 0.3
    assert measurement.total_j <= 100.0 * measurement.duration_s * 1.05
