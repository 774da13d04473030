"""Energy sources and the choice between them."""

from __future__ import annotations

from loguru import logger

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, RaplBackend, find_rapl_packages
from llenergymeasure.errors import DeviceError

__all__ = ["EnergyBackend", "select_energy_backend"]


def select_energy_backend(config: EnergyConfig) -> EnergyBackend | None:
    """Build the energy backend the config asks for.

    Under `auto` the best available source wins: NVML (GPU counter), then RAPL, then the
    labelled CPU estimate. An explicitly requested backend that is unavailable is an
    error. `none` returns None: the run records no energy.

    Raises:
        DeviceError: the requested backend cannot run on this machine.

    """
    choice = config.backend
    if choice == "none":
        return None
    if choice == "nvml":
        raise DeviceError(
            "energy backend 'nvml' is not available in this build; "
            "set measurement.energy.backend to auto, rapl, estimate or none"
        )
    if choice in ("auto", "rapl") and find_rapl_packages(POWERCAP_ROOT):
        return RaplBackend(POWERCAP_ROOT)
    if choice == "rapl":
        raise DeviceError(
            f"energy backend 'rapl' is unavailable: no readable counter under {POWERCAP_ROOT} "
            "(needs an Intel/AMD CPU and read access to energy_uj); use auto or estimate"
        )
    logger.warning("no energy counter on this machine: CPU energy is an estimate")
    return CpuEstimateBackend(config.cpu_tdp_w)
