"""Which NVML device is behind each CUDA ordinal of this process.

Devices are found from what CUDA calls them in this process: `CUDA_VISIBLE_DEVICES`
entries (indices, `GPU-` or `MIG-` UUIDs, whole or any unique prefix, or the legacy
`MIG-GPU-<uuid>/<gi>/<ci>` form) name the NVML device behind each CUDA ordinal. NVML
index i is not assumed to be CUDA index i.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import pynvml

from llenergymeasure.core.energy_backends.nvml_device import NvmlDevice
from llenergymeasure.core.energy_backends.nvml_library import (
    init_nvml,
    nvml_call,
    nvml_error,
    nvml_supported,
)
from llenergymeasure.errors import DeviceError

_LEGACY_MIG = re.compile(r"MIG-(?P<gpu>GPU-[0-9A-Fa-f-]+)/(?P<gi>\d+)/(?P<ci>\d+)")


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
        return [str(i) for i in range(nvml_call("count devices", pynvml.nvmlDeviceGetCount))]
    return entries


def _open_entry(ordinal: int, entry: str, order: str) -> NvmlDevice:
    if entry.startswith(("GPU-", "MIG-")):
        handle = _handle_for_uuid(entry)
    else:
        _check_index_order(order)
        handle = nvml_call(f"open GPU {entry}", pynvml.nvmlDeviceGetHandleByIndex, int(entry))
        if _mig_enabled(handle):
            raise DeviceError(
                f"GPU {entry} is in MIG mode, so CUDA runs on one of its instances: name the "
                "instance in CUDA_VISIBLE_DEVICES by its MIG- UUID (`nvidia-smi -L`)"
            )
    parent = None
    if _is_mig_handle(handle):
        parent = nvml_call(
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
    for i in range(nvml_call("count devices", pynvml.nvmlDeviceGetCount)):
        gpu = nvml_call(f"open GPU {i}", pynvml.nvmlDeviceGetHandleByIndex, i)
        handles = _mig_instances(gpu) if kind == "MIG-" else [gpu]
        found += [
            (nvml_call("read a device UUID", pynvml.nvmlDeviceGetUUID, h), h) for h in handles
        ]
    return found


def _mig_instances(gpu: Any) -> list[Any]:
    """The MIG instance handles of a GPU (none when MIG is off)."""
    if not _mig_enabled(gpu):
        return []
    slots = nvml_call("count MIG instances", pynvml.nvmlDeviceGetMaxMigDeviceCount, gpu)
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
            nvml_call("read a GPU instance id", pynvml.nvmlDeviceGetGpuInstanceId, handle),
            nvml_call("read a compute instance id", pynvml.nvmlDeviceGetComputeInstanceId, handle),
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
    for i in range(nvml_call("count devices", pynvml.nvmlDeviceGetCount)):
        handle = nvml_call(f"open GPU {i}", pynvml.nvmlDeviceGetHandleByIndex, i)
        names.add(nvml_call(f"read the name of GPU {i}", pynvml.nvmlDeviceGetName, handle))
    if len(names) > 1:
        raise DeviceError(
            f"this machine mixes GPU models ({', '.join(sorted(names))}), so CUDA's device "
            "order may differ from NVML's: set CUDA_DEVICE_ORDER=PCI_BUS_ID or list GPU "
            "UUIDs in CUDA_VISIBLE_DEVICES"
        )


def _mig_enabled(handle: Any) -> bool:
    mode = nvml_supported("read the MIG mode", pynvml.nvmlDeviceGetMigMode, handle)
    return mode is not None and mode[0] == pynvml.NVML_DEVICE_MIG_ENABLE


def _is_mig_handle(handle: Any) -> bool:
    flag = nvml_supported(
        "tell a MIG instance from a GPU", pynvml.nvmlDeviceIsMigDeviceHandle, handle
    )
    return bool(getattr(flag, "value", flag))  # pynvml returns a c_uint here
