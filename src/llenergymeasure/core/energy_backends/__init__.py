"""Energy sources and the choice between them: one for the GPUs, one for the host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from llenergymeasure.config.measurement import EnergyConfig
from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.energy_backends.nvml_device import NvmlDevice
from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, RaplBackend, find_rapl_packages
from llenergymeasure.errors import DeviceError
from llenergymeasure.log import logger

__all__ = ["EnergyBackend", "EnergySources", "select_energy_backends"]


@dataclass
class EnergySources:
    """The backends of one process, its GPUs, and why a component it has is not measured.

    `gpus` are the process's CUDA devices as NVML sees them, opened once for the run: the
    NVML backend, the sampler's GPU source and the environment all read these (empty
    where NVML cannot read them). `gpu_problem` is set when the process runs on GPUs that
    no backend measures: its GPU energy is then null, with a warning naming the reason,
    never replaced by CPU energy.
    """

    backends: list[EnergyBackend] = field(default_factory=list)
    gpus: list[NvmlDevice] = field(default_factory=list)
    gpu_problem: str | None = None

    def gpu_sample_source(self) -> NvmlSampleSource | None:
        """The sampler's source for `gpus`; None without any."""
        return NvmlSampleSource(self.gpus) if self.gpus else None

    def close(self) -> None:
        """Release every backend."""
        for backend in self.backends:
            backend.close()


def select_energy_backends(
    config: EnergyConfig, cuda_ordinals: Sequence[int] = ()
) -> EnergySources:
    """Open the process's GPUs once and build the energy backends the config asks for.

    - the GPUs this process runs on (`cuda_ordinals`): NVML, under `auto` and `nvml`;
    - the host's CPU packages (and DRAM): RAPL where readable, else the labelled estimate,
      under `auto`; exactly RAPL under `rapl`, the estimate under `estimate`.
    `none` measures nothing (the GPUs are still opened, for the sampler). An explicitly
    requested source that is unavailable is an error; under `auto` an unavailable NVML
    leaves the GPU component null with a reason.

    Raises:
        DeviceError: an explicitly requested backend cannot run on this machine (for
            `nvml`: NVML does not start or cannot tell which GPU a CUDA device is).

    """
    choice = config.backend
    if choice == "nvml" and not cuda_ordinals:
        raise DeviceError(
            "energy backend 'nvml' needs a CUDA device in this process and none is "
            "visible; run on an NVIDIA GPU or set measurement.energy.backend to auto, "
            "rapl, estimate or none"
        )
    sources = EnergySources()
    if cuda_ordinals:
        sources.gpus, problem = _open_gpus(cuda_ordinals, required=choice == "nvml")
        if choice in ("auto", "nvml"):
            if sources.gpus:
                nvml, problem = _nvml_backend(config, sources.gpus, required=choice == "nvml")
                sources.backends += [nvml] if nvml is not None else []
            sources.gpu_problem = problem
        elif choice != "none":
            sources.gpu_problem = f"measurement.energy.backend is {choice}, which reads no GPU"
    if choice != "none":
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


def _open_gpus(
    cuda_ordinals: Sequence[int], *, required: bool
) -> tuple[list[NvmlDevice], str | None]:
    """The NVML devices behind the process's CUDA devices, or none and why (a warning)."""
    try:
        return open_cuda_devices(cuda_ordinals), None
    except DeviceError as e:
        if required:
            raise
        logger.warning(f"GPUs are not read (no GPU energy from NVML, no GPU samples): {e}")
        return [], str(e)


def _nvml_backend(
    config: EnergyConfig, gpus: list[NvmlDevice], *, required: bool
) -> tuple[NvmlBackend | None, str | None]:
    try:
        return NvmlBackend(gpus, config.sample_interval_ms), None
    except DeviceError as e:
        if required:
            raise
        logger.warning(f"GPU energy is not measured: {e}")
        return None, str(e)
