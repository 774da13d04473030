"""The simulated NVML itself: no kinder than a real device."""

from __future__ import annotations

import pynvml
import pytest

from fakes.nvml import FakeNvml, ManualClock, SimGpu, SimMig, Steps, a100, gh200, h100, install
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices

A, B, C = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111", "GPU-cccccccc-2222"
INSTANT = pynvml.NVML_FI_DEV_POWER_INSTANT


def started(gpus: list[SimGpu], clock: ManualClock, **kwargs) -> tuple[FakeNvml, list]:
    fake = FakeNvml(gpus, clock=clock.monotonic, **kwargs)
    fake.nvmlInit()
    return fake, [fake.nvmlDeviceGetHandleByIndex(i) for i in range(len(gpus))]


def instant_mw(fake: FakeNvml, handle, scope: int = pynvml.NVML_POWER_SCOPE_GPU):
    value = fake.nvmlDeviceGetFieldValues(handle, [(INSTANT, scope)])[0]
    return value.value.uiVal if value.nvmlReturn == pynvml.NVML_SUCCESS else value.nvmlReturn


def test_sensor_sees_a_quarter_of_each_period_and_the_counter_integrates_it() -> None:
    clock = ManualClock()
    seen = Steps.bursts(100.0, 500.0, period_s=0.1, start_s=0.0, length_s=0.025, until_s=2.0)
    missed = Steps.bursts(100.0, 500.0, period_s=0.1, start_s=0.05, length_s=0.025, until_s=2.0)
    fake, (h_seen, h_missed) = started([SimGpu(A, power_w=seen), SimGpu(B, power_w=missed)], clock)
    start = [fake.nvmlDeviceGetTotalEnergyConsumption(h) for h in (h_seen, h_missed)]
    clock.advance(1.0)
    gpu_seen, gpu_missed = fake.gpus
    assert gpu_seen.energy_j(0.0, 1.0) == gpu_missed.energy_j(0.0, 1.0) == pytest.approx(200.0)
    delta_mj = [
        fake.nvmlDeviceGetTotalEnergyConsumption(h) - s
        for h, s in zip((h_seen, h_missed), start, strict=True)
    ]
    assert delta_mj == [500_000, 100_000]  # what the sensor saw, not what was drawn
    assert instant_mw(fake, h_seen) == 500_000 and instant_mw(fake, h_missed) == 100_000


def test_update_period_depends_on_the_device() -> None:
    clock = ManualClock()
    fake, (fast, slow) = started(
        [SimGpu(A, update_period_s=0.02, sensor_window_s=0.02), SimGpu(B)], clock
    )
    start = [fake.nvmlDeviceGetTotalEnergyConsumption(h) for h in (fast, slow)]
    clock.advance(0.05)
    moved = [
        fake.nvmlDeviceGetTotalEnergyConsumption(h) - s
        for h, s in zip((fast, slow), start, strict=True)
    ]
    assert moved == [2_800, 0]  # two 20 ms updates at 70 W; no 100 ms update yet


def test_idle_noise_is_seeded_and_differs_from_reading_to_reading() -> None:
    def readings(seed: int) -> list[int]:
        clock = ManualClock()
        fake, (handle,) = started([h100(A, noise_seed=seed)], clock)
        values = []
        for _ in range(20):
            clock.advance(0.1)
            values.append(instant_mw(fake, handle))
        return values

    first = readings(1)
    assert first == readings(1) and first != readings(2)
    assert len(set(first)) > 10
    assert sum(first) / len(first) == pytest.approx(70_000, abs=1_500)


def test_power_usage_is_a_one_second_average_except_on_ga100_and_older() -> None:
    clock = ManualClock()
    step = Steps([(0.0, 100.0), (2.0, 300.0)])
    fake, (hopper, ga100) = started(
        [SimGpu(A, power_w=step), a100(B, power_w=step, sensor_noise_w=0.0)], clock
    )
    clock.advance(2.3)
    assert fake.nvmlDeviceGetPowerUsage(hopper) == 160_000
    assert fake.nvmlDeviceGetPowerUsage(ga100) == 300_000


def test_clock_event_reasons_say_idle_at_idle_and_power_cap_under_load() -> None:
    clock = ManualClock()
    load = Steps([(0.0, 70.0), (1.0, 690.0)])
    busy = Steps([(0.0, 0.0), (1.0, 100.0)])
    fake, (handle,) = started([SimGpu(A, power_w=load, sm_utilisation_pct=busy)], clock)
    assert (
        fake.nvmlDeviceGetCurrentClocksEventReasons(handle) == pynvml.nvmlClocksEventReasonGpuIdle
    )
    clock.advance(1.5)
    reasons = fake.nvmlDeviceGetCurrentClocksEventReasons(handle)
    assert reasons == pynvml.nvmlClocksEventReasonSwPowerCap


def test_any_call_can_fail_for_its_next_calls() -> None:
    clock = ManualClock()
    fake, (handle,) = started([SimGpu(A)], clock)
    fake.fail("*", pynvml.NVMLError_Unknown, calls=2)
    with pytest.raises(pynvml.NVMLError_Unknown):
        fake.nvmlDeviceGetPowerUsage(handle)
    with pytest.raises(pynvml.NVMLError_Unknown):
        fake.nvmlDeviceGetName(handle)
    assert fake.nvmlDeviceGetPowerUsage(handle) == 70_000
    fake.fail_field(INSTANT, pynvml.NVML_ERROR_TIMEOUT, calls=1)
    assert instant_mw(fake, handle) == pynvml.NVML_ERROR_TIMEOUT
    assert instant_mw(fake, handle) == 70_000


def test_every_call_costs_time() -> None:
    clock = ManualClock()
    fake, (handle,) = started([SimGpu(A)], clock, call_latency_s=0.001, sleep=clock.sleep)
    before_s = clock.now_s
    for _ in range(10):
        fake.nvmlDeviceGetPowerUsage(handle)
    assert clock.now_s - before_s == pytest.approx(0.010)


def test_nvml_enumerates_in_pci_order_and_cuda_fastest_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gpus = [
        SimGpu(A, name="NVIDIA H100 80GB HBM3", pci_bus=0x65),
        SimGpu(B, name="Tesla T4", compute_capability=(7, 5), pci_bus=0x17),
        SimGpu(C, name="NVIDIA H100 80GB HBM3", pci_bus=0xB3),
    ]
    fake = install(monkeypatch, FakeNvml(gpus, clock=ManualClock().monotonic))
    fake.nvmlInit()
    nvml_order = [fake.nvmlDeviceGetUUID(fake.nvmlDeviceGetHandleByIndex(i)) for i in range(3)]
    assert nvml_order == [B, A, C]
    assert fake.cuda_order() == [A, C, B]
    devices = open_cuda_devices([0, 1, 2], visible=",".join(fake.cuda_order()))
    assert [(d.uuid, d.nvml_index) for d in devices] == [(A, 1), (C, 2), (B, 0)]


def test_a_module_device_counts_the_whole_module_in_its_counter() -> None:
    clock = ManualClock()
    fake, (module, board) = started([gh200(A, power_w=Steps.constant(200.0)), SimGpu(B)], clock)
    start_mj = fake.nvmlDeviceGetTotalEnergyConsumption(module)
    clock.advance(1.0)
    assert fake.nvmlDeviceGetTotalEnergyConsumption(module) - start_mj == 320_000  # 200 + 120 W
    assert instant_mw(fake, module, pynvml.NVML_POWER_SCOPE_GPU) == 200_000
    assert instant_mw(fake, module, pynvml.NVML_POWER_SCOPE_MODULE) == 320_000
    assert fake.nvmlDeviceGetPowerUsage(module) == 200_000
    unscoped = fake.nvmlDeviceGetFieldValues(module, [INSTANT])[0]
    assert unscoped.scopeId == pynvml.NVML_POWER_SCOPE_GPU and unscoped.value.uiVal == 200_000
    no_module = instant_mw(fake, board, pynvml.NVML_POWER_SCOPE_MODULE)
    assert no_module == pynvml.NVML_ERROR_NOT_SUPPORTED


def test_temperature_v_processes_and_mig_instances_by_index() -> None:
    clock = ManualClock()
    mig = SimMig("MIG-dddddddd-3333", gpu_instance_id=9, compute_instance_id=0, compute_pids=[42])
    old = SimGpu(B, has_temperature_v=False, compute_pids=[7])
    fake, (new, legacy) = started([SimGpu(A, mig=[mig]), old], clock)
    assert fake.nvmlDeviceGetTemperatureV(new, pynvml.NVML_TEMPERATURE_GPU) == 35
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        fake.nvmlDeviceGetTemperatureV(legacy, pynvml.NVML_TEMPERATURE_GPU)
    assert [p.pid for p in fake.nvmlDeviceGetComputeRunningProcesses(legacy)] == [7]
    instance = fake.nvmlDeviceGetMigDeviceHandleByIndex(new, 0)
    assert fake.nvmlDeviceGetUUID(instance) == mig.uuid
    assert fake.nvmlDeviceGetGpuInstanceId(instance) == 9
    assert [p.pid for p in fake.nvmlDeviceGetComputeRunningProcesses(instance)] == [42]
    with pytest.raises(pynvml.NVMLError_NotFound):
        fake.nvmlDeviceGetMigDeviceHandleByIndex(new, 1)
