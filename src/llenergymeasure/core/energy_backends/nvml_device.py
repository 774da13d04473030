"""The one place that talks to NVML (`pynvml`): start-up, device mapping, readings.

Everything NVML raises is translated here, once, into `DeviceError` with a message that
says how to fix it; the rest of llem sees `NvmlDevice` and plain numbers. A reading that
the device does not support (`NVMLError_NotSupported`, or a function the driver lacks)
returns None and is remembered, so it is not retried at every sampler tick.

Power scope: on GH200/GB200-class modules the energy counter covers the whole module
(Grace CPU and memory too). Such a device is recognised by its name or by the instant
power field answering at NVML_POWER_SCOPE_MODULE; its power is then read at module scope
too, so that baseline, samples and counter cover the same parts (`energy_scope`,
`power_scope`).

Devices are found from what CUDA calls them in this process: `CUDA_VISIBLE_DEVICES`
entries (indices, `GPU-` or `MIG-` UUIDs, whole or any unique prefix, or the legacy
`MIG-GPU-<uuid>/<gi>/<ci>` form) name the NVML device behind each CUDA ordinal. NVML
index i is not assumed to be CUDA index i.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import pynvml

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

_FALLBACK_HINT = "or set measurement.energy.backend to rapl, estimate or none"
_HINTS = {
    pynvml.NVML_ERROR_LIBRARY_NOT_FOUND: "no NVIDIA driver (libnvidia-ml.so.1) on this machine; "
    f"install the driver {_FALLBACK_HINT}",
    pynvml.NVML_ERROR_DRIVER_NOT_LOADED: "the NVIDIA kernel driver is not loaded; "
    f"check `nvidia-smi` {_FALLBACK_HINT}",
    pynvml.NVML_ERROR_NO_PERMISSION: "this user may not read the GPU; run with access to "
    f"/dev/nvidia* {_FALLBACK_HINT}",
    pynvml.NVML_ERROR_NOT_FOUND: "no such device; list devices with `nvidia-smi -L` and check "
    "CUDA_VISIBLE_DEVICES",
    pynvml.NVML_ERROR_GPU_IS_LOST: "the GPU has fallen off the bus; check `nvidia-smi` and "
    "the kernel log, then reset or reboot",
    pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH: "the NVML library and the kernel driver differ "
    "in version; reboot after a driver update",
}

_LEGACY_MIG = re.compile(r"MIG-(?P<gpu>GPU-[0-9A-Fa-f-]+)/(?P<gi>\d+)/(?P<ci>\d+)")

_lock = threading.Lock()
_initialised_library: object | None = None


def nvml_error(error: Exception, action: str) -> DeviceError:
    """The `DeviceError` for an `NVMLError` raised while doing `action`."""
    hint = _HINTS.get(getattr(error, "value", None), "see `nvidia-smi -q` for the device state")
    return DeviceError(f"NVML could not {action} ({error}): {hint}")


def init_nvml() -> None:
    """Start NVML once per process (later calls return at once).

    Raises:
        DeviceError: no driver, no permission, or a driver/library mismatch.

    """
    global _initialised_library
    with _lock:
        if _initialised_library is pynvml:
            return
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise nvml_error(e, "start") from e
        _initialised_library = pynvml


def nvml_available() -> bool:
    """True when NVML starts on this machine."""
    try:
        init_nvml()
    except DeviceError as e:
        logger.debug(f"NVML unavailable: {e}")
        return False
    return True


def _call(action: str, fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    except pynvml.NVMLError as e:
        raise nvml_error(e, action) from e


def parse_cuda_visible_devices(value: str | None) -> list[str] | None:
    """The entries of `CUDA_VISIBLE_DEVICES` as CUDA reads them; None when unset.

    CUDA stops at the first invalid entry (a negative or malformed index), so "0,2,-1,1"
    exposes devices 0 and 2 only; an empty value exposes none.
    """
    if value is None:
        return None
    entries: list[str] = []
    for raw in value.split(","):
        entry = raw.strip()
        if entry.startswith(("GPU-", "MIG-")):
            entries.append(entry)
        elif entry.isdigit():
            entries.append(str(int(entry)))
        else:
            break
    return entries


def visible_cuda_ordinals(visible: str | None = None) -> list[int]:
    """The CUDA ordinals this process can use (every GPU when CUDA_VISIBLE_DEVICES is unset)."""
    return list(range(len(_visible_entries(visible))))


def open_cuda_devices(
    ordinals: Sequence[int],
    visible: str | None = None,
    device_order: str | None = None,
) -> list[NvmlDevice]:
    """The NVML devices behind CUDA ordinals `ordinals` of this process.

    Args:
        ordinals: CUDA device indices as this process sees them (`cuda:N`).
        visible: `CUDA_VISIBLE_DEVICES`; read from the environment when None.
        device_order: `CUDA_DEVICE_ORDER`; read from the environment when None.

    Raises:
        DeviceError: an ordinal CUDA does not expose, an entry NVML does not know, an
            index on a machine whose CUDA order may differ from NVML's, or a GPU in MIG mode
            named by index.

    """
    entries = _visible_entries(visible)
    if device_order is None:
        device_order = os.environ.get("CUDA_DEVICE_ORDER", "")
    devices = []
    for ordinal in ordinals:
        if not 0 <= ordinal < len(entries):
            raise DeviceError(
                f"CUDA device {ordinal} is not visible to this process "
                f"(CUDA_VISIBLE_DEVICES exposes {len(entries)}); check CUDA_VISIBLE_DEVICES"
            )
        devices.append(_open_entry(ordinal, entries[ordinal], device_order))
    return devices


def _visible_entries(visible: str | None) -> list[str]:
    """CUDA_VISIBLE_DEVICES entries; every NVML index when it is unset."""
    init_nvml()
    if visible is None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = parse_cuda_visible_devices(visible)
    if entries is None:
        return [str(i) for i in range(_call("count devices", pynvml.nvmlDeviceGetCount))]
    return entries


def _open_entry(ordinal: int, entry: str, order: str) -> NvmlDevice:
    if entry.startswith(("GPU-", "MIG-")):
        handle = _handle_for_uuid(entry)
    else:
        _check_index_order(order)
        handle = _call(f"open GPU {entry}", pynvml.nvmlDeviceGetHandleByIndex, int(entry))
        if _mig_enabled(handle):
            raise DeviceError(
                f"GPU {entry} is in MIG mode, so CUDA runs on one of its instances: name the "
                "instance in CUDA_VISIBLE_DEVICES by its MIG- UUID (`nvidia-smi -L`)"
            )
    parent = None
    if _is_mig_handle(handle):
        parent = _call(
            f"find the parent GPU of {entry}",
            pynvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle,
            handle,
        )
    return NvmlDevice(ordinal, handle, parent)


def _handle_for_uuid(entry: str) -> Any:
    """The handle of a UUID entry as CUDA reads it: full, abbreviated, or legacy MIG.

    CUDA accepts any unique prefix of a UUID (`GPU-8932f937`) and the legacy MIG form
    `MIG-GPU-<uuid>/<gpu instance id>/<compute instance id>`.
    """
    legacy = _LEGACY_MIG.fullmatch(entry)
    if legacy is not None:
        parent = _handle_for_uuid(legacy["gpu"])
        return _mig_instance(parent, legacy["gpu"], int(legacy["gi"]), int(legacy["ci"]))
    try:
        return pynvml.nvmlDeviceGetHandleByUUID(entry)
    except (pynvml.NVMLError_NotFound, pynvml.NVMLError_InvalidArgument) as e:
        not_found = e  # not a whole UUID: perhaps a prefix of one
    except pynvml.NVMLError as e:
        raise nvml_error(e, f"find device {entry}") from e
    matches = [(uuid, h) for uuid, h in _uuid_handles(entry[:4]) if uuid.startswith(entry)]
    if len(matches) > 1:
        listed = ", ".join(uuid for uuid, _ in matches)
        raise DeviceError(
            f"CUDA_VISIBLE_DEVICES entry {entry} is ambiguous: it begins the UUIDs of "
            f"{len(matches)} devices ({listed}); write enough of the UUID to name one"
        )
    if not matches:
        raise nvml_error(not_found, f"find device {entry}") from not_found
    return matches[0][1]


def _uuid_handles(kind: str) -> list[tuple[str, Any]]:
    """(UUID, handle) of every GPU (kind "GPU-") or every MIG instance (kind "MIG-")."""
    found = []
    for i in range(_call("count devices", pynvml.nvmlDeviceGetCount)):
        gpu = _call(f"open GPU {i}", pynvml.nvmlDeviceGetHandleByIndex, i)
        handles = _mig_instances(gpu) if kind == "MIG-" else [gpu]
        found += [(_call("read a device UUID", pynvml.nvmlDeviceGetUUID, h), h) for h in handles]
    return found


def _mig_instances(gpu: Any) -> list[Any]:
    """The MIG instance handles of a GPU (none when MIG is off)."""
    if not _mig_enabled(gpu):
        return []
    slots = _call("count MIG instances", pynvml.nvmlDeviceGetMaxMigDeviceCount, gpu)
    instances = []
    for slot in range(slots):
        try:
            instances.append(pynvml.nvmlDeviceGetMigDeviceHandleByIndex(gpu, slot))
        except pynvml.NVMLError_NotFound:
            continue
        except pynvml.NVMLError as e:
            raise nvml_error(e, f"open MIG instance {slot}") from e
    return instances


def _mig_instance(parent: Any, gpu_uuid: str, gpu_instance: int, compute_instance: int) -> Any:
    """The MIG instance of `parent` with these GPU and compute instance ids."""
    for handle in _mig_instances(parent):
        ids = (
            _call("read a GPU instance id", pynvml.nvmlDeviceGetGpuInstanceId, handle),
            _call("read a compute instance id", pynvml.nvmlDeviceGetComputeInstanceId, handle),
        )
        if ids == (gpu_instance, compute_instance):
            return handle
    raise DeviceError(
        f"GPU {gpu_uuid} has no MIG instance with GPU instance {gpu_instance} and compute "
        f"instance {compute_instance}; list instances with `nvidia-smi -L` and check "
        "CUDA_VISIBLE_DEVICES"
    )


def _check_index_order(order: str) -> None:
    """Index entries name NVML devices only when CUDA enumerates in PCI order.

    CUDA's default order (FASTEST_FIRST) matches PCI bus order among identical GPUs; on a
    machine with different GPU models it may not, and attribution would be wrong.
    """
    if order == "PCI_BUS_ID":
        return
    names = set()
    for i in range(_call("count devices", pynvml.nvmlDeviceGetCount)):
        handle = _call(f"open GPU {i}", pynvml.nvmlDeviceGetHandleByIndex, i)
        names.add(_call(f"read the name of GPU {i}", pynvml.nvmlDeviceGetName, handle))
    if len(names) > 1:
        raise DeviceError(
            f"this machine mixes GPU models ({', '.join(sorted(names))}), so CUDA's device "
            "order may differ from NVML's: set CUDA_DEVICE_ORDER=PCI_BUS_ID or list GPU "
            "UUIDs in CUDA_VISIBLE_DEVICES"
        )


def _supported(action: str, fn: Callable[..., T], *args: Any) -> T | None:
    """`fn(*args)`; None where the device or driver does not support it."""
    try:
        return fn(*args)
    except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound):
        return None
    except pynvml.NVMLError as e:
        raise nvml_error(e, action) from e


def _mig_enabled(handle: Any) -> bool:
    mode = _supported("read the MIG mode", pynvml.nvmlDeviceGetMigMode, handle)
    return mode is not None and mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE


def _is_mig_handle(handle: Any) -> bool:
    flag = _supported("tell a MIG instance from a GPU", pynvml.nvmlDeviceIsMigDeviceHandle, handle)
    return bool(getattr(flag, "value", flag))  # pynvml returns a c_uint here


def driver_versions() -> tuple[str | None, str | None]:
    """The driver version and the newest CUDA version it supports ("12.4")."""
    init_nvml()
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion()
    except pynvml.NVMLError as e:
        logger.warning(f"NVML: driver version unreadable: {e}")
        return None, None
    return driver, f"{cuda // 1000}.{cuda % 1000 // 10}"


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
        self.uuid: str = _call("read a device UUID", pynvml.nvmlDeviceGetUUID, handle)
        self.parent_uuid: str | None = (
            _call("read a GPU UUID", pynvml.nvmlDeviceGetUUID, parent_handle)
            if parent_handle is not None
            else None
        )
        self.name: str = _call("read a device name", pynvml.nvmlDeviceGetName, handle)
        self.nvml_index: int = _call(
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
        gpu_name = _call("read a GPU name", pynvml.nvmlDeviceGetName, self.power_handle)
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
        values = _supported(
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
        value = _supported(f"read {reading} of {self.uuid}", fn, *args)
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
