"""Energy sources and the choice between them."""

from __future__ import annotations

from collections.abc import Sequence

from loguru import logger

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.energy_backends.nvml_device import nvml_available
from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, RaplBackend, find_rapl_packages
from llenergymeasure.errors import DeviceError

__all__ = ["EnergyBackend", "select_energy_backend"]


def select_energy_backend(
    config: EnergyConfig, cuda_ordinals: Sequence[int] = ()
) -> EnergyBackend | None:
    """Build the energy backend the config asks for.

    Under `auto` the best available source wins: NVML (GPU counter) when it starts and
    this process has a CUDA device, then RAPL, then the labelled CPU estimate. An
    explicitly requested backend that is unavailable is an error. `none` returns None:
    the run records no energy.

    Args:
        config: the energy section of the experiment config.
        cuda_ordinals: the CUDA devices (`cuda:N`) this process runs on; empty on CPU.

    Raises:
        DeviceError: the requested backend cannot run on this machine, or NVML runs but
            cannot tell which GPU a CUDA device is.

    """
    choice = config.backend
    if choice == "none":
        return None
    if choice in ("auto", "nvml"):
        gpu = _nvml_backend(config, cuda_ordinals, required=choice == "nvml")
        if gpu is not None:
            return gpu
    if choice in ("auto", "rapl") and find_rapl_packages(POWERCAP_ROOT):
        return RaplBackend(POWERCAP_ROOT)
    if choice == "rapl":
        raise DeviceError(
            f"energy backend 'rapl' is unavailable: no readable counter under {POWERCAP_ROOT} "
            "(needs an Intel/AMD CPU and read access to energy_uj); use auto or estimate"
        )
    logger.warning("no energy counter on this machine: CPU energy is an estimate")
    return CpuEstimateBackend(config.cpu_tdp_w)


def _nvml_backend(
    config: EnergyConfig, cuda_ordinals: Sequence[int], *, required: bool
) -> NvmlBackend | None:
    if not cuda_ordinals:
        if required:
            raise DeviceError(
                "energy backend 'nvml' needs a CUDA device in this process and none is "
                "visible; run on an NVIDIA GPU or set measurement.energy.backend to auto, "
                "rapl, estimate or none"
            )
        return None
    if not required and not nvml_available():
        logger.warning("NVML does not start on this machine: GPU energy is not measured")
        return None
    return NvmlBackend.for_cuda_devices(cuda_ordinals, config.sample_interval_ms)
