"""A simulated NVML, swapped in for `pynvml` at llem's one NVML module.

It behaves as the real library does where llem can tell the difference:
- nvmlInit/nvmlShutdown are reference-counted; any call without init raises
  `NVMLError_Uninitialized`;
- the total-energy counter is an integer in mJ that the driver updates every 100 ms
  (stepwise: between updates it does not move), starting from an arbitrary value;
- `nvmlDeviceGetPowerUsage` is the 1 s trailing average (mW), updated with the counter;
- the instant power field (NVML_FI_DEV_POWER_INSTANT) comes through
  `nvmlDeviceGetFieldValues` as real `c_nvmlFieldValue_t` structs, with a per-field
  `nvmlReturn` of NOT_SUPPORTED where the device lacks it (the call itself succeeds);
- memory and utilisation come back as pynvml's own ctypes structs, MIG flags as c_uint;
- a MIG instance handle answers identity and memory only; power, energy, temperature,
  clocks and utilisation are NOT_SUPPORTED on it, as on real drivers;
- errors are pynvml's own exception classes, and every constant is pynvml's.

Power, temperature, utilisation, memory and clock-event reasons follow scripts
(`Steps`) in seconds since the fake was created, on a clock that is `time.monotonic` by
default (so real sampler threads can run against it) or a `ManualClock` for exact tests.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FunctionType
from typing import Any

import pynvml

COUNTER_PERIOD_S = 0.1
AVERAGE_WINDOW_S = 1.0


class ManualClock:
    """A clock that moves only when told to; `sleep` advances it."""

    def __init__(self, start_s: float = 0.0) -> None:
        self.now_s = start_s

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.now_s += seconds

    advance = sleep


class Steps:
    """A piecewise-constant script: `(t_s, value)` pairs; the first value also holds before."""

    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = sorted(points)

    @classmethod
    def constant(cls, value: float) -> Steps:
        return cls([(0.0, value)])

    def at(self, t_s: float) -> float:
        value = self.points[0][1]
        for start, v in self.points:
            if start <= t_s:
                value = v
        return value

    def integral(self, t0_s: float, t1_s: float) -> float:
        """Exact integral over [t0_s, t1_s]."""
        total = 0.0
        bounds = [-math.inf] + [t for t, _ in self.points[1:]] + [math.inf]
        for (_, value), lo, hi in zip(self.points, bounds, bounds[1:], strict=False):
            total += value * max(0.0, min(t1_s, hi) - max(t0_s, lo))
        return total


@dataclass
class SimMig:
    """A MIG instance of a simulated GPU."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3 MIG 1g.10gb"
    memory_total_mb: float = 9856.0
    memory_used_mb: float = 13.0


@dataclass
class SimGpu:
    """A simulated GPU; times in the scripts are seconds since the fake was created."""

    uuid: str
    name: str = "NVIDIA H100 80GB HBM3"
    power_w: Steps = field(default_factory=lambda: Steps.constant(70.0))
    temperature_c: Steps = field(default_factory=lambda: Steps.constant(35.0))
    sm_utilisation_pct: Steps = field(default_factory=lambda: Steps.constant(0.0))
    clock_event_reasons: Steps = field(default_factory=lambda: Steps.constant(0))
    memory_used_mb: Steps = field(default_factory=lambda: Steps.constant(512.0))
    memory_total_mb: float = 81559.0
    has_energy_counter: bool = True
    has_instant_power: bool = True
    has_clocks_event_reasons: bool = True
    persistence_mode: bool = True
    compute_capability: tuple[int, int] = (9, 0)
    power_limit_w: float = 700.0
    default_power_limit_w: float = 700.0
    sm_clock_mhz: int = 1980
    memory_clock_mhz: int = 2619
    counter_at_start_mj: int = 987_654_321
    mig: list[SimMig] = field(default_factory=list)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """The true energy the scripted power profile draws over [t0_s, t1_s]."""
        return self.power_w.integral(t0_s, t1_s)


@dataclass(frozen=True, eq=False)
class _Handle:
    gpu: SimGpu
    index: int
    mig: SimMig | None = None


@dataclass
class _Failure:
    function: str
    error: type[pynvml.NVMLError]
    start_s: float
    end_s: float
    uuid: str | None


def _updated_at(t_s: float) -> float:
    """Time of the driver's last update at or before t_s."""
    return math.floor(t_s / COUNTER_PERIOD_S + 1e-9) * COUNTER_PERIOD_S


class FakeNvml:
    """Drop-in for the `pynvml` module, as far as llem uses it."""

    def __init__(
        self,
        gpus: list[SimGpu],
        clock: Callable[[], float] = time.monotonic,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
        init_error: type[pynvml.NVMLError] | None = None,
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self.origin_s = clock()
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.init_error = init_error
        self.calls: Counter[str] = Counter()
        self._refcount = 0
        self._failures: list[_Failure] = []
        self._handles = [_Handle(g, i) for i, g in enumerate(gpus)]
        self._mig_handles = [_Handle(h.gpu, h.index, m) for h in self._handles for m in h.gpu.mig]

    def __getattr__(self, name: str) -> Any:
        """Constants, structs and exception classes are pynvml's own."""
        real = getattr(pynvml, name)
        if isinstance(real, FunctionType) and name.startswith("nvml"):
            raise AttributeError(f"the simulated NVML does not model {name}")
        return real

    def now_s(self) -> float:
        """Seconds since the fake was created, on its clock."""
        return self.clock() - self.origin_s

    def fail(
        self,
        function: str,
        error: type[pynvml.NVMLError] = pynvml.NVMLError_GpuIsLost,
        start_s: float = 0.0,
        end_s: float = math.inf,
        uuid: str | None = None,
    ) -> None:
        """Make `function` raise `error` between start_s and end_s (for one GPU or all)."""
        self._failures.append(_Failure(function, error, start_s, end_s, uuid))

    # -- library -------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.calls["nvmlInit"] += 1
        if self.init_error is not None:
            raise self.init_error()
        self._refcount += 1

    def nvmlShutdown(self) -> None:
        self._enter("nvmlShutdown")
        self._refcount -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._enter("nvmlSystemGetDriverVersion")
        return self.driver_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._enter("nvmlSystemGetCudaDriverVersion")
        return self.cuda_driver_version

    def nvmlDeviceGetCount(self) -> int:
        self._enter("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> _Handle:
        self._enter("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self._handles):
            raise pynvml.NVMLError_InvalidArgument()
        return self._handles[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> _Handle:
        self._enter("nvmlDeviceGetHandleByUUID")
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for handle in self._handles + self._mig_handles:
            if _uuid(handle) == text:
                return handle
        raise pynvml.NVMLError_NotFound()

    # -- identity ------------------------------------------------------------------------

    def nvmlDeviceGetUUID(self, handle: _Handle) -> str:
        self._enter("nvmlDeviceGetUUID", handle)
        return _uuid(handle)

    def nvmlDeviceGetName(self, handle: _Handle) -> str:
        self._enter("nvmlDeviceGetName", handle)
        return handle.mig.name if handle.mig else handle.gpu.name

    def nvmlDeviceGetIndex(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetIndex", handle, whole_gpu_only=True)
        return handle.index

    def nvmlDeviceGetMigMode(self, handle: _Handle) -> list[int]:
        self._enter("nvmlDeviceGetMigMode", handle, whole_gpu_only=True)
        mode = pynvml.NVML_DEVICE_MIG_ENABLE if handle.gpu.mig else pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceIsMigDeviceHandle(self, handle: _Handle) -> Any:
        self._enter("nvmlDeviceIsMigDeviceHandle", handle)
        return pynvml.c_uint(1 if handle.mig else 0)

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, handle: _Handle) -> _Handle:
        self._enter("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", handle)
        if handle.mig is None:
            raise pynvml.NVMLError_InvalidArgument()
        return self._handles[handle.index]

    def nvmlDeviceGetCudaComputeCapability(self, handle: _Handle) -> tuple[int, int]:
        self._enter("nvmlDeviceGetCudaComputeCapability", handle)
        return handle.gpu.compute_capability

    def nvmlDeviceGetPersistenceMode(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetPersistenceMode", handle, whole_gpu_only=True)
        on = handle.gpu.persistence_mode
        return pynvml.NVML_FEATURE_ENABLED if on else pynvml.NVML_FEATURE_DISABLED

    def nvmlDeviceGetPowerManagementLimit(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetPowerManagementLimit", handle, whole_gpu_only=True)
        return round(handle.gpu.power_limit_w * 1000)

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetPowerManagementDefaultLimit", handle, whole_gpu_only=True)
        return round(handle.gpu.default_power_limit_w * 1000)

    def nvmlDeviceGetClockInfo(self, handle: _Handle, clock_type: int) -> int:
        self._enter("nvmlDeviceGetClockInfo", handle, whole_gpu_only=True)
        if clock_type == pynvml.NVML_CLOCK_SM:
            return handle.gpu.sm_clock_mhz
        if clock_type == pynvml.NVML_CLOCK_MEM:
            return handle.gpu.memory_clock_mhz
        raise pynvml.NVMLError_NotSupported()

    # -- readings ------------------------------------------------------------------------

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetTotalEnergyConsumption", handle, whole_gpu_only=True)
        gpu = handle.gpu
        if not gpu.has_energy_counter:
            raise pynvml.NVMLError_NotSupported()
        energy_j = gpu.energy_j(0.0, _updated_at(self.now_s()))
        return gpu.counter_at_start_mj + round(energy_j * 1000)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetPowerUsage", handle, whole_gpu_only=True)
        end_s = _updated_at(self.now_s())
        energy_j = handle.gpu.energy_j(end_s - AVERAGE_WINDOW_S, end_s)
        return round(energy_j / AVERAGE_WINDOW_S * 1000)

    def nvmlDeviceGetFieldValues(self, handle: _Handle, field_ids: list[int]) -> Any:
        self._enter("nvmlDeviceGetFieldValues", handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        now_s = self.now_s()
        for value, field_id in zip(values, field_ids, strict=True):
            value.fieldId = field_id
            value.timestamp = round(now_s * 1e6)
            instant = field_id == pynvml.NVML_FI_DEV_POWER_INSTANT
            if instant and handle.gpu.has_instant_power and handle.mig is None:
                value.nvmlReturn = pynvml.NVML_SUCCESS
                value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                value.value.uiVal = round(handle.gpu.power_w.at(_updated_at(now_s)) * 1000)
            else:
                value.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature", handle, whole_gpu_only=True)
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return round(handle.gpu.temperature_c.at(self.now_s()))

    def nvmlDeviceGetMemoryInfo(self, handle: _Handle) -> Any:
        self._enter("nvmlDeviceGetMemoryInfo", handle)
        if handle.mig is not None:
            used_mb, total_mb = handle.mig.memory_used_mb, handle.mig.memory_total_mb
        else:
            used_mb, total_mb = (
                handle.gpu.memory_used_mb.at(self.now_s()),
                handle.gpu.memory_total_mb,
            )
        used, total = round(used_mb * 2**20), round(total_mb * 2**20)
        return pynvml.c_nvmlMemory_t(total=total, free=total - used, used=used)

    def nvmlDeviceGetUtilizationRates(self, handle: _Handle) -> Any:
        self._enter("nvmlDeviceGetUtilizationRates", handle, whole_gpu_only=True)
        gpu_pct = round(handle.gpu.sm_utilisation_pct.at(self.now_s()))
        return pynvml.c_nvmlUtilization_t(gpu=gpu_pct, memory=gpu_pct // 2)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetCurrentClocksEventReasons", handle, whole_gpu_only=True)
        if not handle.gpu.has_clocks_event_reasons:
            raise pynvml.NVMLError_FunctionNotFound()
        return int(handle.gpu.clock_event_reasons.at(self.now_s()))

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle, whole_gpu_only=True)
        return int(handle.gpu.clock_event_reasons.at(self.now_s()))

    def _enter(self, function: str, handle: _Handle | None = None, whole_gpu_only: bool = False):
        self.calls[function] += 1
        if self._refcount <= 0:
            raise pynvml.NVMLError_Uninitialized()
        now_s = self.now_s()
        for f in self._failures:
            on_device = f.uuid is None or (handle is not None and f.uuid == _uuid(handle))
            if f.function == function and on_device and f.start_s <= now_s < f.end_s:
                raise f.error()
        if whole_gpu_only and handle is not None and handle.mig is not None:
            raise pynvml.NVMLError_NotSupported()


def _uuid(handle: _Handle) -> str:
    return handle.mig.uuid if handle.mig is not None else handle.gpu.uuid


def install(monkeypatch: Any, fake: FakeNvml) -> FakeNvml:
    """Swap the fake in for `pynvml` in llem's NVML module (the only one that imports it)."""
    from llenergymeasure.core.energy_backends import nvml_device

    monkeypatch.setattr(nvml_device, "pynvml", fake)
    return fake
