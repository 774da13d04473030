"""A snapshot of the host, its software and its devices at the start of a run."""

from __future__ import annotations

import os
import platform
import socket
from collections import Counter
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import psutil

from llenergymeasure.core.energy_backends.cuda_devices import (
    open_cuda_devices,
    visible_cuda_ordinals,
)
from llenergymeasure.core.energy_backends.nvml_device import NvmlDevice
from llenergymeasure.core.energy_backends.nvml_library import driver_versions, nvml_available
from llenergymeasure.domain.environment import EnvironmentMetadata, GpuInfo
from llenergymeasure.errors import DeviceError
from llenergymeasure.log import logger

_PACKAGES = ("torch", "transformers", "accelerate", "llenergymeasure")


def collect_environment(
    cuda_ordinals: Sequence[int] | None = None, gpus: Sequence[NvmlDevice] | None = None
) -> EnvironmentMetadata:
    """Everything a reader needs to know about where the numbers came from.

    Args:
        cuda_ordinals: the CUDA devices (`cuda:N`) this process uses, described through
            NVML as they are at the start; None: every GPU visible to the process.
        gpus: those devices already opened by the run (`EnergySources.gpus`), described
            without opening them again; None: open them here.

    """
    versions = {name: _package_version(name) for name in _PACKAGES}
    cpu_model = _cpu_model()
    cpu_count = psutil.cpu_count(logical=True)
    governor = _read_text(Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"))
    in_container = _in_container()
    cuda_available, cuda_version = _cuda()
    gpu_infos, driver_version, cuda_driver_version = _gpus(cuda_ordinals, gpus)
    summary = (
        f"{socket.gethostname()}: {cpu_model or 'unknown CPU'} x{cpu_count}"
        f", governor {governor or 'n/a'}"
        f"{', container' if in_container else ''}"
        f"{_gpu_summary(gpu_infos, driver_version)}"
        f", CUDA {cuda_version if cuda_available else 'unavailable'}"
        f", torch {versions['torch']}, transformers {versions['transformers']}"
    )
    return EnvironmentMetadata(
        host=socket.gethostname(),
        os=f"{platform.system()} {platform.release()}",
        python_version=platform.python_version(),
        cpu_model=cpu_model,
        cpu_count=cpu_count,
        cpu_governor=governor,
        memory_total_mb=psutil.virtual_memory().total / 2**20,
        in_container=in_container,
        cuda_available=cuda_available,
        cuda_version=cuda_version,
        driver_version=driver_version,
        cuda_driver_version=cuda_driver_version,
        gpus=gpu_infos,
        torch_version=versions["torch"],
        transformers_version=versions["transformers"],
        accelerate_version=versions["accelerate"],
        llenergymeasure_version=versions["llenergymeasure"],
        summary_line=summary,
    )


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def _cpu_model() -> str | None:
    cpuinfo = _read_text(Path("/proc/cpuinfo")) or ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _in_container() -> bool:
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return True
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return True
    cgroup = _read_text(Path("/proc/1/cgroup")) or ""
    return any(word in cgroup for word in ("docker", "kubepods", "containerd", "lxc"))


def _cuda() -> tuple[bool, str | None]:
    import torch

    return torch.cuda.is_available(), torch.version.cuda


def _gpus(
    cuda_ordinals: Sequence[int] | None, opened: Sequence[NvmlDevice] | None
) -> tuple[list[GpuInfo], str | None, str | None]:
    """The process's GPUs, the driver version and its CUDA version; empty without NVML."""
    if opened is not None:
        devices = list(opened)
    elif (cuda_ordinals is not None and not cuda_ordinals) or not nvml_available():
        return [], None, None
    else:
        try:
            ordinals = visible_cuda_ordinals() if cuda_ordinals is None else cuda_ordinals
            devices = open_cuda_devices(ordinals)
        except DeviceError as e:
            logger.warning(f"environment: GPUs not described: {e}")
            return [], None, None
    if not devices:
        return [], None, None
    driver_version, cuda_driver_version = driver_versions()
    return [d.info() for d in devices], driver_version, cuda_driver_version


def _gpu_summary(gpus: list[GpuInfo], driver_version: str | None) -> str:
    """E.g. ", 2x NVIDIA H100 (driver 550.54.15, persistence off)"; empty without GPUs."""
    if not gpus:
        return ""
    names = ", ".join(f"{n}x {name}" for name, n in Counter(g.name for g in gpus).items())
    persistence = {g.persistence_mode for g in gpus} - {None}
    mode = (
        "" if not persistence else (", persistence on" if all(persistence) else ", persistence off")
    )
    return f", {names} (driver {driver_version or 'n/a'}{mode})"
