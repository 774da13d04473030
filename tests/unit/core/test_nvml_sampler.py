"""The GPU sample source and the sampler against the simulated NVML."""

from __future__ import annotations

import time

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlSampleSource
from llenergymeasure.core.power_thermal import PowerThermalSampler
from llenergymeasure.core.throttle import throttle_info_from_samples
from llenergymeasure.domain import metrics as reason_bits
from llenergymeasure.domain.metrics import ExtendedMetrics
from llenergymeasure.results.timeseries import TimeseriesSample

A = "GPU-aaaaaaaa-0000"
B = "GPU-bbbbbbbb-0000"


def source_on(
    monkeypatch: pytest.MonkeyPatch,
    gpu: SimGpu | list[SimGpu],
    clock: ManualClock | None = None,
):
    gpus = gpu if isinstance(gpu, list) else [gpu]
    fake = install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic if clock else time.monotonic))
    indices = list(range(len(gpus)))
    visible = ",".join(str(i) for i in indices)
    return fake, NvmlSampleSource(open_cuda_devices(indices, visible=visible))


def read_every_tenth_second(source: NvmlSampleSource, clock: ManualClock, seconds: float):
    samples = []
    for k in range(round(seconds * 10)):
        clock.now_s = k / 10
        samples.extend(source.read(clock.now_s))
    return samples


def test_one_sample_per_device_with_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = SimGpu(A, temperature_c=Steps.constant(61.0), sm_utilisation_pct=Steps.constant(97.0))
    clock = ManualClock()
    _, source = source_on(monkeypatch, gpu, clock)
    (sample,) = source.read(0.0)
    assert sample.device_index == 0 and sample.t_s == 0.0
    assert (sample.power_w, sample.temperature_c, sample.sm_utilisation_pct) == (70.0, 61.0, 97.0)
    assert (sample.memory_used_mb, sample.memory_total_mb) == (512.0, 81559.0)
    assert sample.throttle_reasons == 0 and sample.cpu_util_pct is None
    assert source.errors == {}


def test_instant_power_is_preferred_over_the_one_second_average(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    profile = Steps([(0.0, 100.0), (2.0, 300.0)])
    _, source = source_on(monkeypatch, SimGpu(A, power_w=profile), clock)
    clock.now_s = 2.3
    assert source.read(2.3)[0].power_w == 300.0
    assert source.devices[0].power_field == "NVML_FI_DEV_POWER_INSTANT"


def test_without_the_instant_field_the_average_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    gpu = SimGpu(A, power_w=Steps([(0.0, 100.0), (2.0, 300.0)]), has_instant_power=False)
    fake, source = source_on(monkeypatch, gpu, clock)
    clock.now_s = 2.3
    assert source.read(2.3)[0].power_w == 160.0  # 0.7 s at 100 W + 0.3 s at 300 W
    asked = fake.calls["nvmlDeviceGetFieldValues"]
    source.read(2.4)
    assert fake.calls["nvmlDeviceGetFieldValues"] == asked  # not asked again
    assert "1 s average" in source.devices[0].power_field


def test_a_failing_field_is_null_with_a_warning_and_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    fake, source = source_on(monkeypatch, SimGpu(A), clock)
    fake.fail("nvmlDeviceGetTemperatureV", pynvml.NVMLError_GpuIsLost, start_s=1.0, end_s=2.0)
    samples = read_every_tenth_second(source, clock, 3.0)
    temps = [s.temperature_c for s in samples]
    assert temps[:10] == [35.0] * 10
    assert temps[10:20] == [None] * 10
    assert temps[20:] == [35.0] * 10
    assert all(s.power_w == 70.0 for s in samples)
    (key,) = source.errors
    assert A in key and "temperature" in key and "fallen off the bus" in source.errors[key]


def test_unsupported_readings_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    fake, source = source_on(monkeypatch, SimGpu(A), clock)
    fake.fail("nvmlDeviceGetUtilizationRates", pynvml.NVMLError_NotSupported)
    samples = read_every_tenth_second(source, clock, 1.0)
    assert all(s.sm_utilisation_pct is None for s in samples)
    assert fake.calls["nvmlDeviceGetUtilizationRates"] == 1
    assert source.errors == {}  # unsupported is not an error


def test_each_tick_costs_five_reads_and_no_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    fake, source = source_on(monkeypatch, SimGpu(A), clock)
    before = fake.calls.copy()
    read_every_tenth_second(source, clock, 1.0)
    new_calls = fake.calls - before
    assert sum(new_calls.values()) == 5 * 10
    assert set(new_calls) == {
        "nvmlDeviceGetFieldValues",
        "nvmlDeviceGetTemperatureV",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetUtilizationRates",
        "nvmlDeviceGetCurrentClocksEventReasons",
    }


def test_old_drivers_answer_through_the_throttle_reasons_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = ManualClock()
    gpu = SimGpu(
        A,
        clock_event_reasons=Steps.constant(reason_bits.SW_THERMAL),
        has_clocks_event_reasons=False,
    )
    _, source = source_on(monkeypatch, gpu, clock)
    assert source.read(0.0)[0].throttle_reasons == reason_bits.SW_THERMAL


def test_sampler_thread_survives_nvml_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    fake, source = source_on(monkeypatch, SimGpu(A))
    start_s = fake.now_s()
    fake.fail("nvmlDeviceGetFieldValues", pynvml.NVMLError_Unknown, start_s + 0.1, start_s + 0.3)
    fake.fail("nvmlDeviceGetMemoryInfo", pynvml.NVMLError_GpuIsLost, start_s + 0.1, start_s + 0.3)
    sampler = PowerThermalSampler([source], interval_ms=10)
    sampler.start()
    time.sleep(0.5)
    samples = sampler.stop()
    assert len(samples) >= 20
    assert any(s.power_w is None and s.memory_used_mb is None for s in samples)
    assert samples[0].power_w == 70.0 and samples[-1].power_w == 70.0
    assert all(s.temperature_c == 35.0 for s in samples)
    assert {k.rsplit(" ", 1)[1] for k in sampler.errors} == {"power_w", "memory"}


def test_throttle_durations_from_scripted_reason_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    reasons = Steps(
        [
            (0.0, pynvml.nvmlClocksEventReasonGpuIdle),  # not a throttle
            (1.0, pynvml.nvmlClocksEventReasonSwPowerCap),
            (1.5, 0),
            (2.0, pynvml.nvmlClocksEventReasonHwThermalSlowdown | reason_bits.HW_SLOWDOWN),
            (2.3, 0),
        ]
    )
    temps = Steps([(0.0, 60.0), (2.0, 87.0), (2.5, 80.0)])
    clock = ManualClock()
    gpu = SimGpu(A, clock_event_reasons=reasons, temperature_c=temps)
    _, source = source_on(monkeypatch, gpu, clock)
    info = throttle_info_from_samples(read_every_tenth_second(source, clock, 3.0), 0.1)
    assert info.detected and info.power and info.thermal and info.hw_thermal
    assert not info.sw_thermal and not info.hw_power
    assert info.duration_s == pytest.approx(0.8)  # 5 ticks of power cap + 3 of HW thermal
    assert info.max_temperature_c == 87.0


def test_power_cap_is_not_thermal_throttling(monkeypatch: pytest.MonkeyPatch) -> None:
    reasons = Steps(
        [
            (0.0, pynvml.nvmlClocksEventReasonGpuIdle),  # not a throttle
            (1.0, pynvml.nvmlClocksEventReasonSwPowerCap),
            (1.5, 0),
            (2.0, pynvml.nvmlClocksEventReasonHwThermalSlowdown | reason_bits.HW_SLOWDOWN),
            (2.3, reason_bits.HW_SLOWDOWN),
            (2.5, 0),
        ]
    )
    clock = ManualClock()
    _, source = source_on(monkeypatch, SimGpu(A, clock_event_reasons=reasons), clock)
    info = throttle_info_from_samples(read_every_tenth_second(source, clock, 3.0), 0.1)
    assert info.thermal_duration_s == pytest.approx(0.3)
    assert info.power_cap_duration_s == pytest.approx(0.5)
    assert info.hw_slowdown_duration_s == pytest.approx(0.5)
    assert info.sw_power_cap and info.hw_slowdown


def test_a_tick_counts_once_per_class_across_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = ManualClock()
    capped = Steps([(0.0, pynvml.nvmlClocksEventReasonSwPowerCap), (1.0, 0)])
    _, source = source_on(
        monkeypatch,
        [SimGpu(A, clock_event_reasons=capped), SimGpu(B, clock_event_reasons=capped)],
        clock,
    )
    info = throttle_info_from_samples(read_every_tenth_second(source, clock, 2.0), 0.1)
    assert info.power_cap_duration_s == pytest.approx(1.0)
    assert info.thermal_duration_s == 0.0 and info.thermal is False


def test_throttle_bits_are_nvmls() -> None:
    assert reason_bits.SW_POWER_CAP == pynvml.nvmlClocksEventReasonSwPowerCap
    assert reason_bits.HW_SLOWDOWN == pynvml.nvmlClocksEventReasonHwSlowdown
    assert reason_bits.SW_THERMAL == pynvml.nvmlClocksEventReasonSwThermalSlowdown
    assert reason_bits.HW_THERMAL == pynvml.nvmlClocksEventReasonHwThermalSlowdown
    assert reason_bits.HW_POWER_BRAKE == pynvml.nvmlClocksEventReasonHwPowerBrakeSlowdown


def test_gpu_utilisation_is_named_as_nvmls_utilization_gpu() -> None:
    schema = ExtendedMetrics.model_json_schema()["properties"]["gpu_util_mean_pct"]
    assert "utilization.gpu" in schema["description"]
    assert "not SM occupancy" in schema["description"]
    assert "utilization.gpu" in (TimeseriesSample.sm_utilisation_pct.__doc__ or "")
