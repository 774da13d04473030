"""Energy sources and the choice between them: one for the GPUs, one for the host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loguru import logger

from llenergymeasure.config.models import EnergyConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.energy_backends.nvml_device import init_nvml
from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, RaplBackend, find_rapl_packages
from llenergymeasure.errors import DeviceError

__all__ = ["EnergyBackend", "EnergySources", "select_energy_backends"]


@dataclass
class EnergySources:
    """The backends of one process and why a component it has is not measured.

    `gpu_problem` is set when the process runs on GPUs that no backend measures: its GPU
    energy is then null, with a warning naming the reason, never replaced by CPU energy.
    """

    backends: list[EnergyBackend] = field(default_factory=list)
    gpu_problem: str | None = None

    def close(self) -> None:
        """Release every backend."""
        for backend in self.backends:
            backend.close()


def select_energy_backends(
    config: EnergyConfig, cuda_ordinals: Sequence[int] = ()
) -> EnergySources:
    """Build the energy backends the config asks for.

    - the GPUs this process runs on (`cuda_ordinals`): NVML, under `auto` and `nvml`;
    - the host's CPU packages (and DRAM): RAPL where readable, else the labelled estimate,
      under `auto`; exactly RAPL under `rapl`, the estimate under `estimate`.
    `none` measures nothing. An explicitly requested source that is unavailable is an
    error; under `auto` an unavailable NVML leaves the GPU component null with a reason.

    Raises:
        DeviceError: an explicitly requested backend cannot run on this machine (for
            `nvml`: NVML does not start or cannot tell which GPU a CUDA device is).

    """
    choice = config.backend
    sources = EnergySources()
    if choice == "none":
        return sources
    if cuda_ordinals and choice in ("auto", "nvml"):
        gpu, sources.gpu_problem = _nvml_backend(config, cuda_ordinals, required=choice == "nvml")
        if gpu is not None:
            sources.backends.append(gpu)
    elif choice == "nvml":
        raise DeviceError(
            "energy backend 'nvml' needs a CUDA device in this process and none is "
            "visible; run on an NVIDIA GPU or set measurement.energy.backend to auto, "
            "rapl, estimate or none"
        )
    elif cuda_ordinals:
        sources.gpu_problem = f"measurement.energy.backend is {choice}, which reads no GPU"
    sources.backends.append(_host_backend(config))
    return sources


def _host_backend(config: EnergyConfig) -> EnergyBackend:
    choice = config.backend
    if choice in ("auto", "nvml", "rapl") and find_rapl_packages(POWERCAP_ROOT):
        return RaplBackend(POWERCAP_ROOT)
    if choice == "rapl":
        raise DeviceError(
            f"energy backend 'rapl' is unavailable: no readable counter under {POWERCAP_ROOT} "
            "(needs an Intel/AMD CPU and read access to energy_uj); use auto or estimate"
        )
    if choice != "estimate":
        logger.warning("no CPU energy counter on this machine: CPU energy is an estimate")
    return CpuEstimateBackend(config.cpu_tdp_w)


def _nvml_backend(
    config: EnergyConfig, cuda_ordinals: Sequence[int], *, required: bool
) -> tuple[NvmlBackend | None, str | None]:
    try:
        init_nvml()
        return NvmlBackend.for_cuda_devices(cuda_ordinals, config.sample_interval_ms), None
    except DeviceError as e:
        if required:
            raise
        logger.warning(f"GPU energy is not measured: {e}")
        return None, str(e)
