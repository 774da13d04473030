"""Starting NVML (`pynvml`) and translating what it raises.

Everything NVML raises is translated here, once, into `DeviceError` with a message that
says how to fix it; the modules that read devices call NVML through `nvml_call` and
`nvml_supported`, and the rest of llem sees plain numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pynvml

from llenergymeasure.errors import DeviceError
from llenergymeasure.log import logger

T = TypeVar("T")

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


def nvml_call(action: str, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`, an NVML error raised as `DeviceError`."""
    try:
        return fn(*args)
    except pynvml.NVMLError as e:
        raise nvml_error(e, action) from e


def nvml_supported(action: str, fn: Callable[..., T], *args: Any) -> T | None:
    """`fn(*args)`; None where the device or driver does not support it."""
    try:
        return fn(*args)
    except (pynvml.NVMLError_NotSupported, pynvml.NVMLError_FunctionNotFound):
        return None
    except pynvml.NVMLError as e:
        raise nvml_error(e, action) from e


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
