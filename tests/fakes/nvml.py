"""A simulated NVML, swapped in for `pynvml` at llem's one NVML module.

It behaves as the real library does where llem can tell the difference, and is no
kinder than real devices (see `fakes.nvml_device_model` for the sensor and counter):
- nvmlInit/nvmlShutdown are reference-counted; any call without init raises
  `NVMLError_Uninitialized`; every call costs `call_latency_s`;
- the power sensor sees part of each update period (25 ms of 100 ms by default) and the
  total-energy counter (an integer in mJ from an arbitrary start) is the integral of what
  it saw, published once per period (stepwise), over the whole module on a GH200;
- `nvmlDeviceGetPowerUsage` is the 1 s average of the sensed windows (mW), or the
  instant value on GA100 and older;
- fields come through `nvmlDeviceGetFieldValues` as real `c_nvmlFieldValue_t` structs,
  ids plain or `(field_id, scope_id)` as pynvml takes them (an older pynvml that takes
  plain ids only: `takes_scope_ids=False`): the instant power field
  (NVML_FI_DEV_POWER_INSTANT) at NVML_POWER_SCOPE_GPU, or NVML_POWER_SCOPE_MODULE on a
  module device; a per-field `nvmlReturn` of NOT_SUPPORTED where the device lacks it
  (the call itself succeeds), or a scheduled per-field error (`fail_field`);
- memory, utilisation and processes come back as pynvml's own structs, MIG flags as c_uint;
- a MIG instance handle answers identity, memory and processes only; power, energy,
  temperature, clocks and utilisation are NOT_SUPPORTED on it, as on real drivers;
- NVML enumerates in PCI bus order, which need not be CUDA's (`cuda_order`);
- clock-event reasons carry `GpuIdle` at idle and SW power cap near the power limit;
- any call can be made to fail (`fail`), for a time span or for its next n calls;
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
from dataclasses import dataclass
from types import FunctionType
from typing import Any

import pynvml

from fakes.nvml_device_model import ManualClock, SimGpu, SimMig, Steps, a100, gh200, h100

__all__ = [
    "FakeNvml",
    "ManualClock",
    "SimGpu",
    "SimMig",
    "Steps",
    "a100",
    "gh200",
    "h100",
    "install",
]

ANY_CALL = "*"
MAX_MIG_DEVICES = 7


@dataclass(frozen=True, eq=False)
class _Handle:
    gpu: SimGpu
    index: int
    mig: SimMig | None = None


@dataclass
class _Failure:
    function: str
    error: type[pynvml.NVMLError] | int
    start_s: float
    end_s: float
    uuid: str | None
    calls_left: float = math.inf

    def hits(self, function: str, handle: _Handle | None, now_s: float) -> bool:
        """Whether this call fails (and counts it against `calls_left`)."""
        on_device = self.uuid is None or (handle is not None and self.uuid == _uuid(handle))
        named = self.function in (function, ANY_CALL)
        if not (named and on_device and self.start_s <= now_s < self.end_s and self.calls_left):
            return False
        self.calls_left -= 1
        return True


class FakeNvml:
    """Drop-in for the `pynvml` module, as far as llem uses it."""

    def __init__(
        self,
        gpus: list[SimGpu],
        clock: Callable[[], float] = time.monotonic,
        driver_version: str = "550.54.15",
        cuda_driver_version: int = 12040,
        init_error: type[pynvml.NVMLError] | None = None,
        call_latency_s: float = 20e-6,
        sleep: Callable[[float], None] = time.sleep,
        takes_scope_ids: bool = True,
    ) -> None:
        self.gpus = gpus
        self.clock = clock
        self.origin_s = clock()
        self.driver_version = driver_version
        self.cuda_driver_version = cuda_driver_version
        self.init_error = init_error
        self.call_latency_s = call_latency_s
        self.sleep = sleep
        self.takes_scope_ids = takes_scope_ids
        self.calls: Counter[str] = Counter()
        self._refcount = 0
        self._failures: list[_Failure] = []
        self._field_failures: list[_Failure] = []
        pci_order = sorted(range(len(gpus)), key=lambda i: _pci_bus(gpus[i], i))
        self._handles = [_Handle(gpus[i], n) for n, i in enumerate(pci_order)]
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

    def cuda_order(self) -> list[str]:
        """GPU UUIDs in CUDA's default order (FASTEST_FIRST: newest architecture first)."""
        ranked = sorted(self._handles, key=lambda h: (-h.gpu.compute_capability[0], h.index))
        return [h.gpu.uuid for h in ranked]

    def fail(
        self,
        function: str,
        error: type[pynvml.NVMLError] = pynvml.NVMLError_GpuIsLost,
        start_s: float = 0.0,
        end_s: float = math.inf,
        uuid: str | None = None,
        calls: float = math.inf,
    ) -> None:
        """Make `function` ("*": any call) raise `error` between start_s and end_s.

        For one GPU or all, and for at most `calls` calls.
        """
        self._failures.append(_Failure(function, error, start_s, end_s, uuid, calls))

    def fail_field(
        self,
        field_id: int,
        nvml_return: int = pynvml.NVML_ERROR_UNKNOWN,
        start_s: float = 0.0,
        end_s: float = math.inf,
        uuid: str | None = None,
        calls: float = math.inf,
    ) -> None:
        """Make field `field_id` come back with `nvml_return` (the call itself succeeds)."""
        self._field_failures.append(
            _Failure(str(field_id), nvml_return, start_s, end_s, uuid, calls)
        )

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
        return next(h for h in self._handles if h.gpu is handle.gpu)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetMaxMigDeviceCount", handle, whole_gpu_only=True)
        return MAX_MIG_DEVICES if handle.gpu.mig else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: _Handle, index: int) -> _Handle:
        self._enter("nvmlDeviceGetMigDeviceHandleByIndex", handle, whole_gpu_only=True)
        if not 0 <= index < MAX_MIG_DEVICES:
            raise pynvml.NVMLError_InvalidArgument()
        if index >= len(handle.gpu.mig):
            raise pynvml.NVMLError_NotFound()
        mig = handle.gpu.mig[index]
        return next(h for h in self._mig_handles if h.mig is mig)

    def nvmlDeviceGetGpuInstanceId(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetGpuInstanceId", handle)
        if handle.mig is None:
            raise pynvml.NVMLError_InvalidArgument()
        return handle.mig.gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetComputeInstanceId", handle)
        if handle.mig is None:
            raise pynvml.NVMLError_InvalidArgument()
        return handle.mig.compute_instance_id

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
        energy_j = gpu.counter_j(self.now_s(), module=gpu.module_extra_w is not None)
        return gpu.counter_at_start_mj + round(energy_j * 1000)

    def nvmlDeviceGetPowerUsage(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetPowerUsage", handle, whole_gpu_only=True)
        gpu, now_s = handle.gpu, self.now_s()
        watts = gpu.average_w(now_s) if gpu.power_usage_is_average else gpu.instant_w(now_s)
        return round(watts * 1000)

    def nvmlDeviceGetFieldValues(self, handle: _Handle, field_ids: list[Any]) -> Any:
        self._enter("nvmlDeviceGetFieldValues", handle)
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        now_s = self.now_s()
        for value, requested in zip(values, field_ids, strict=True):
            if isinstance(requested, tuple) and not self.takes_scope_ids:
                value.fieldId = requested  # an older pynvml: TypeError, as there
            field_id, scope = requested if isinstance(requested, tuple) else (requested, 0)
            value.fieldId, value.scopeId = field_id, scope
            value.timestamp = round(now_s * 1e6)
            watts = self._instant_field_w(handle, field_id, scope)
            failure = next(
                (f for f in self._field_failures if f.hits(str(field_id), handle, now_s)), None
            )
            if failure is not None:
                value.nvmlReturn = failure.error
            elif watts is None:
                value.nvmlReturn = pynvml.NVML_ERROR_NOT_SUPPORTED
            else:
                value.nvmlReturn = pynvml.NVML_SUCCESS
                value.valueType = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT
                value.value.uiVal = round(watts * 1000)
        return values

    def nvmlDeviceGetTemperatureV(
        self, handle: _Handle, sensor: int, version: int = pynvml.nvmlTemperature_v1
    ) -> int:
        self._enter("nvmlDeviceGetTemperatureV", handle, whole_gpu_only=True)
        if not handle.gpu.has_temperature_v:
            raise pynvml.NVMLError_FunctionNotFound()
        if version != pynvml.nvmlTemperature_v1:
            raise pynvml.NVMLError_ArgumentVersionMismatch()
        return self._temperature(handle, sensor)

    def nvmlDeviceGetTemperature(self, handle: _Handle, sensor: int) -> int:
        self._enter("nvmlDeviceGetTemperature", handle, whole_gpu_only=True)
        return self._temperature(handle, sensor)

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
        return handle.gpu.reasons_at(self.now_s())

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: _Handle) -> int:
        self._enter("nvmlDeviceGetCurrentClocksThrottleReasons", handle, whole_gpu_only=True)
        return handle.gpu.reasons_at(self.now_s())

    def nvmlDeviceGetComputeRunningProcesses(self, handle: _Handle) -> list[Any]:
        """Compute processes on the device (this process too, where it holds a context)."""
        self._enter("nvmlDeviceGetComputeRunningProcesses", handle)
        if not handle.gpu.has_process_query:
            raise pynvml.NVMLError_NotSupported()
        if handle.mig is not None:
            pids = handle.mig.compute_pids
        else:
            pids = handle.gpu.compute_pids + [p for m in handle.gpu.mig for p in m.compute_pids]
        return [
            pynvml.nvmlStructToFriendlyObject(
                pynvml.c_nvmlProcessInfo_t(pid=pid, usedGpuMemory=2**30)
            )
            for pid in pids
        ]

    def _instant_field_w(self, handle: _Handle, field_id: int, scope: int) -> float | None:
        """The instant power field's watts at this scope; None where unsupported."""
        gpu = handle.gpu
        if field_id != pynvml.NVML_FI_DEV_POWER_INSTANT or handle.mig is not None:
            return None
        if not gpu.has_instant_power:
            return None
        if scope == pynvml.NVML_POWER_SCOPE_GPU:
            return gpu.instant_w(self.now_s())
        module_readable = gpu.module_extra_w is not None and gpu.has_module_power_field
        if scope == pynvml.NVML_POWER_SCOPE_MODULE and module_readable:
            return gpu.instant_w(self.now_s(), module=True)
        return None

    def _temperature(self, handle: _Handle, sensor: int) -> int:
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise pynvml.NVMLError_InvalidArgument()
        return round(handle.gpu.temperature_c.at(self.now_s()))

    def _enter(self, function: str, handle: _Handle | None = None, whole_gpu_only: bool = False):
        self.calls[function] += 1
        if self.call_latency_s:
            self.sleep(self.call_latency_s)
        if self._refcount <= 0:
            raise pynvml.NVMLError_Uninitialized()
        now_s = self.now_s()
        for f in self._failures:
            if f.hits(function, handle, now_s):
                raise f.error()
        if whole_gpu_only and handle is not None and handle.mig is not None:
            raise pynvml.NVMLError_NotSupported()


def _pci_bus(gpu: SimGpu, position: int) -> int:
    return gpu.pci_bus if gpu.pci_bus is not None else position


def _uuid(handle: _Handle) -> str:
    return handle.mig.uuid if handle.mig is not None else handle.gpu.uuid


def install(monkeypatch: Any, fake: FakeNvml) -> FakeNvml:
    """Swap the fake in for `pynvml` in llem's NVML modules (the only ones that import it)."""
    from llenergymeasure.core.energy_backends import cuda_devices, nvml_device, nvml_library

    for module in (nvml_library, cuda_devices, nvml_device):
        monkeypatch.setattr(module, "pynvml", fake)
    return fake
