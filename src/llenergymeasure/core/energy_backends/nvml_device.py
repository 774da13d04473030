"""One NVML device's identity and readings (`NvmlDevice`).

NVML errors become `DeviceError` through `nvml_library`; a reading that
the device does not support (`NVMLError_NotSupported`, or a function the driver lacks)
returns None and is remembered, so it is not retried at every sampler tick.

Power scope: on GH200/GB200-class modules the energy counter covers the whole module
(Grace CPU and memory too). Such a device is recognised by its name or by the instant
power field answering at NVML_POWER_SCOPE_MODULE; its power is then read at module scope
too, so that baseline, samples and counter cover the same parts (`energy_scope`,
`power_scope`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import pynvml

from llenergymeasure.core.energy_backends.nvml_library import (
    nvml_call,
    nvml_error,
    nvml_supported,
)
from llenergymeasure.domain.environment import GpuInfo
from llenergymeasure.errors import DeviceError
from llenergymeasure.log import logger

T = TypeVar("T")
MIB = 2**20
PowerScope = Literal["gpu", "module"]
# Grace Hopper / Grace Blackwell superchips ("NVIDIA GH200 480GB", "NVIDIA GB200").
_MODULE_NAME = re.compile(r"\bG[HB]\d{3}\b")
NOT_SUPPORTED = pynvml.NVML_ERROR_NOT_SUPPORTED
# Failed reads of the instant power field in a row before a device is switched to the
# 1 s average for the rest of the run (one failure alone never switches it).
INSTANT_FAILURES_TO_SWITCH = 3


class NvmlDevice:
    """One CUDA device of this process, as NVML sees it; handles are looked up once.

    For a MIG instance, identity and memory are the instance's, while power, energy,
    temperature, clocks and throttle reasons are the parent GPU's (NVML reports them for
    the whole GPU only).

    Readings return None when the device does not support them (remembered, not retried)
    and raise `DeviceError` on any other NVML error.

    Attributes:
        energy_scope: what the energy counter covers: `gpu`, or `module` on a
            GH200/GB200-class device (Grace CPU and memory included).
        power_field_switches: one line per switch of `power_w` from the instant field
            to the 1 s average during the run (empty when it never switched).

    """

    def __init__(self, cuda_ordinal: int, handle: Any, parent_handle: Any | None = None) -> None:
        self.cuda_ordinal = cuda_ordinal
        self.handle = handle
        self.power_handle = parent_handle if parent_handle is not None else handle
        self.is_mig = parent_handle is not None
        self.uuid: str = nvml_call("read a device UUID", pynvml.nvmlDeviceGetUUID, handle)
        self.parent_uuid: str | None = (
            nvml_call("read a GPU UUID", pynvml.nvmlDeviceGetUUID, parent_handle)
            if parent_handle is not None
            else None
        )
        self.name: str = nvml_call("read a device name", pynvml.nvmlDeviceGetName, handle)
        self.nvml_index: int = nvml_call(
            "read a GPU index", pynvml.nvmlDeviceGetIndex, self.power_handle
        )
        self.power_uuid = self.parent_uuid or self.uuid
        self.power_field_switches: list[str] = []
        self._unsupported: set[str] = set()
        self._instant_failures = 0
        self.energy_scope: PowerScope = "gpu"
        self._instant_scope: PowerScope = "gpu"
        self._settle_power_reading()

    def _settle_power_reading(self) -> None:
        """Find the counter's scope and the power reading `power_w` starts with."""
        module_power = self._probe_instant_field("module") == pynvml.NVML_SUCCESS
        gpu_name = nvml_call("read a GPU name", pynvml.nvmlDeviceGetName, self.power_handle)
        if module_power or _MODULE_NAME.search(gpu_name):
            self.energy_scope = "module"
        if module_power:
            self._instant_scope = "module"
            return
        if self.energy_scope == "module":
            logger.warning(
                f"NVML: {self.power_uuid} is a module ({gpu_name}) whose energy counter "
                "covers the whole module, but NVML reads its power for the GPU only: "
                "sampled power and a power-reading baseline cover less than the counter"
            )
        if self._probe_instant_field("gpu") == NOT_SUPPORTED:
            logger.info(
                f"NVML: {self.power_uuid} has no instant power field; power is read from "
                "nvmlDeviceGetPowerUsage (a 1 s average)"
            )
            self._unsupported.add("power_instant")

    def energy_mj(self) -> int | None:
        """The total-energy counter (mJ since the driver loaded; Volta and newer)."""
        return self._read(
            "total_energy", pynvml.nvmlDeviceGetTotalEnergyConsumption, self.power_handle
        )

    @property
    def power_field(self) -> str:
        """Which NVML reading `power_w` returns now."""
        if "power_instant" not in self._unsupported:
            scope = " at module scope" if self._instant_scope == "module" else ""
            return f"NVML_FI_DEV_POWER_INSTANT{scope}"
        return "nvmlDeviceGetPowerUsage (1 s average)"

    @property
    def power_scope(self) -> PowerScope:
        """What `power_w` covers now: the module only through the module-scope field."""
        return self._instant_scope if "power_instant" not in self._unsupported else "gpu"

    def power_w(self) -> float | None:
        """Power (W) at `power_scope`, from the reading `power_field` names.

        The instant field (NVML_FI_DEV_POWER_INSTANT) where the device has it, else the
        1 s averaged `nvmlDeviceGetPowerUsage`. Which one is settled when the device is
        opened; a device is switched to the average later only when the field answers
        NOT_SUPPORTED or its own return code is an error `INSTANT_FAILURES_TO_SWITCH`
        reads in a row (that read then returns the average). A switch logs a warning and
        is appended to `power_field_switches`, so that a baseline and a window that used
        different readings can be told apart. Any other failed read raises for that
        reading only, never the average in its place; the next read tries the field
        again.

        Returns:
            Watts, or None where the device has no power reading at all.

        Raises:
            DeviceError: this read failed: the call itself (a whole-call failure never
                counts towards a switch: NVML did not answer, which the average would
                not mend), or the field's own return code.

        """
        if "power_instant" not in self._unsupported:
            milliwatts = self._instant_power_mw()
            if milliwatts is not None:
                return milliwatts / 1000.0
        milliwatts = self._read("power_usage", pynvml.nvmlDeviceGetPowerUsage, self.power_handle)
        return milliwatts / 1000.0 if milliwatts is not None else None

    def temperature_c(self) -> float | None:
        """GPU core temperature (C).

        Read through `nvmlDeviceGetTemperatureV`; where the driver or the installed pynvml
        lacks it, through the deprecated `nvmlDeviceGetTemperature` (remembered, so the
        newer call is tried once).
        """
        sensor = pynvml.NVML_TEMPERATURE_GPU
        celsius = None
        versioned = getattr(pynvml, "nvmlDeviceGetTemperatureV", None)
        if versioned is None:
            self._unsupported.add("temperature_v")
        else:
            celsius = self._read("temperature_v", versioned, self.power_handle, sensor)
        if celsius is None:
            celsius = self._read(
                "temperature", pynvml.nvmlDeviceGetTemperature, self.power_handle, sensor
            )
        return float(celsius) if celsius is not None else None

    def memory_mb(self) -> tuple[float, float] | None:
        """(used, total) device memory in MiB (the instance's for MIG)."""
        info = self._read("memory", pynvml.nvmlDeviceGetMemoryInfo, self.handle)
        return (info.used / MIB, info.total / MIB) if info is not None else None

    def sm_utilisation_pct(self) -> float | None:
        """NVML's `utilization.gpu`: % of the last period any kernel ran (not on MIG).

        Not SM occupancy: one small kernel on one SM reads 100 %. The locked parquet
        column keeps the name `sm_utilisation_pct`.
        """
        rates = self._read("utilisation", pynvml.nvmlDeviceGetUtilizationRates, self.handle)
        return float(rates.gpu) if rates is not None else None

    def clock_event_reasons(self) -> int | None:
        """nvmlClocksEventReason* bits; drivers before 535 answer the older throttle call."""
        bits = self._read(
            "clocks_event_reasons", pynvml.nvmlDeviceGetCurrentClocksEventReasons, self.power_handle
        )
        if bits is None:
            bits = self._read(
                "clocks_throttle_reasons",
                pynvml.nvmlDeviceGetCurrentClocksThrottleReasons,
                self.power_handle,
            )
        return bits

    def compute_processes(self) -> list[int] | None:
        """PIDs of the other compute processes on the GPU whose energy is measured.

        From `nvmlDeviceGetComputeRunningProcesses` on the physical GPU (for a MIG
        instance, the parent: its energy is the whole GPU's, so every instance's work
        counts), this process excluded. NVML reports PIDs of the host's PID namespace: in
        a container without the host's PID namespace this process's own PID differs and
        it is listed too.

        Returns:
            Sorted PIDs (empty when the GPU runs nothing else), or None where the device
            or driver cannot list processes.

        Raises:
            DeviceError: the NVML call failed (not for lack of support).

        """
        processes = self._read(
            "compute_processes",
            pynvml.nvmlDeviceGetComputeRunningProcesses,
            self.power_handle,
        )
        if processes is None:
            return None
        own_pid = os.getpid()
        return sorted({p.pid for p in processes if p.pid != own_pid})

    def info(self) -> GpuInfo:
        """The device's static description and state now; unreadable fields are None."""
        h = self.power_handle
        memory = self._static(self.memory_mb)
        capability = self._static(
            self._read, "compute_capability", pynvml.nvmlDeviceGetCudaComputeCapability, h
        )
        persistence = self._static(
            self._read, "persistence", pynvml.nvmlDeviceGetPersistenceMode, h
        )
        limit_mw = self._static(
            self._read, "power_limit", pynvml.nvmlDeviceGetPowerManagementLimit, h
        )
        default_mw = self._static(
            self._read, "default_limit", pynvml.nvmlDeviceGetPowerManagementDefaultLimit, h
        )
        sm_mhz, memory_mhz = (
            self._static(self._read, f"clock_{c}", pynvml.nvmlDeviceGetClockInfo, h, c)
            for c in (pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_MEM)
        )
        return GpuInfo(
            index=self.nvml_index,
            uuid=self.uuid,
            name=self.name,
            vram_mb=memory[1] if memory else None,
            compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
            is_mig=self.is_mig,
            parent_uuid=self.parent_uuid,
            power_limit_w=limit_mw / 1000.0 if limit_mw is not None else None,
            default_power_limit_w=default_mw / 1000.0 if default_mw is not None else None,
            persistence_mode=(
                persistence == pynvml.NVML_FEATURE_ENABLED if persistence is not None else None
            ),
            sm_clock_mhz=float(sm_mhz) if sm_mhz is not None else None,
            memory_clock_mhz=float(memory_mhz) if memory_mhz is not None else None,
            temperature_c=self._static(self.temperature_c),
        )

    def _instant_power_mw(self) -> float | None:
        """One read of the instant field; None once the device has switched from it.

        Raises:
            DeviceError: the call failed, or the field did and the device has not switched.

        """
        milliwatts, code = self._instant_field(self._instant_scope)
        if code == pynvml.NVML_SUCCESS:
            self._instant_failures = 0
            return milliwatts
        if code == NOT_SUPPORTED:
            self._switch_to_average("the field answered NOT_SUPPORTED")
            return None
        self._instant_failures += 1
        error = pynvml.NVMLError(code)
        if self._instant_failures >= INSTANT_FAILURES_TO_SWITCH:
            self._switch_to_average(f"{self._instant_failures} failed reads in a row ({error})")
            return None
        raise nvml_error(error, f"read the instant power field of {self.power_uuid}")

    def _instant_field(self, scope: PowerScope) -> tuple[float | None, int]:
        """(milliwatts, the field's NVML return code) of one read at `scope`.

        Raises:
            DeviceError: the call failed for another reason than support.

        """
        values = nvml_supported(
            f"read the {scope} power of {self.power_uuid}",
            pynvml.nvmlDeviceGetFieldValues,
            self.power_handle,
            [_instant_field_id(scope)],
        )
        if values is None:
            return None, NOT_SUPPORTED
        value = values[0]
        if value.nvmlReturn != pynvml.NVML_SUCCESS:
            return None, value.nvmlReturn
        return _field_number(value), pynvml.NVML_SUCCESS

    def _probe_instant_field(self, scope: PowerScope) -> int | None:
        """The field's return code at `scope` when the device is opened (None: call failed).

        A pynvml too old to take scope ids (it cannot store a `(field, scope)` pair)
        answers NOT_SUPPORTED for the module.
        """
        try:
            return self._instant_field(scope)[1]
        except DeviceError as e:
            logger.warning(f"NVML: {e}")
            return None
        except (TypeError, AttributeError) as e:
            logger.info(f"NVML: this pynvml cannot ask for {scope}-scope power ({e})")
            return NOT_SUPPORTED

    def adopt_switches(self, switches: list[str]) -> None:
        """Take over the switches a copy of this device made (in the sampling process).

        The sampler reads a copy of each device in its own process; a switch it made
        holds here too, for the rest of the run, and is recorded once.
        """
        for switch in switches:
            if switch not in self.power_field_switches:
                self._unsupported.add("power_instant")
                self.power_field_switches.append(switch)
                logger.warning(
                    f"NVML: power reading switched for the rest of the run, {switch}; "
                    "readings before and after the switch are not comparable"
                )

    def _switch_to_average(self, reason: str) -> None:
        before = self.power_field
        self._unsupported.add("power_instant")
        switch = f"{self.power_uuid}: {before} -> {self.power_field}: {reason}"
        self.power_field_switches.append(switch)
        logger.warning(
            f"NVML: power reading switched for the rest of the run, {switch}; readings "
            "before and after the switch are not comparable"
        )

    def _static(self, fn: Callable[..., T | None], *args: Any) -> T | None:
        try:
            return fn(*args)
        except DeviceError as e:
            logger.warning(f"NVML: {self.uuid}: {e}")
            return None

    def _read(self, reading: str, fn: Callable[..., T], *args: Any) -> T | None:
        if reading in self._unsupported:
            return None
        value = nvml_supported(f"read {reading} of {self.uuid}", fn, *args)
        if value is None:
            logger.debug(f"NVML: {reading} is not supported on {self.uuid}")
            self._unsupported.add(reading)
        return value


def _instant_field_id(scope: PowerScope) -> Any:
    """The instant power field as `nvmlDeviceGetFieldValues` takes it at `scope`.

    GPU scope is scope id 0, the struct's default, so it is asked for by the bare field
    id (which every pynvml takes); the module scope needs a `(field, scope)` pair.
    """
    if scope == "gpu":
        return pynvml.NVML_FI_DEV_POWER_INSTANT
    return (pynvml.NVML_FI_DEV_POWER_INSTANT, pynvml.NVML_POWER_SCOPE_MODULE)


def _field_number(value: Any) -> float:
    """The number in an nvmlFieldValue_t, read through the member its type names."""
    member = {
        pynvml.NVML_VALUE_TYPE_DOUBLE: "dVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_INT: "uiVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG: "ulVal",
        pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG: "ullVal",
        pynvml.NVML_VALUE_TYPE_SIGNED_LONG_LONG: "sllVal",
        pynvml.NVML_VALUE_TYPE_SIGNED_INT: "siVal",
    }.get(value.valueType, "uiVal")
    return float(getattr(value.value, member))
