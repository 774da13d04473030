"""What the Python API's windows measure: the devices, their synchronisation, the sources.

`WindowDevices` turns `llem.measure`'s arguments into a measurement config (checked as a
config file's would be), the CUDA ordinals to measure and how to synchronise them, and
opens a fresh set of energy backends per window; the idle baseline and the GPUs' state
at the start are read once, before the first window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError

from llenergymeasure.config.measurement import (
    BaselineConfig,
    EnergyBackendChoice,
    EnergyConfig,
    MeasurementConfig,
)
from llenergymeasure.core.baseline import Baselines, measure_baselines
from llenergymeasure.core.energy_backends import EnergySources, select_energy_backends
from llenergymeasure.domain.device import cuda_ordinal
from llenergymeasure.domain.environment import GpuInfo
from llenergymeasure.domain.metrics import MeasurementWarning
from llenergymeasure.errors import ConfigError

EnergyChoice = EnergyBackendChoice
Devices = Sequence[int | str] | None


class WindowDevices:
    """The CUDA devices a window covers, how they are synchronised and what measures them."""

    def __init__(
        self,
        devices: Devices,
        sample_interval_ms: int,
        baseline: bool | float,
        energy: EnergyChoice,
        barrier: Callable[[], None] | None = None,
    ) -> None:
        self.config = _measurement_config(sample_interval_ms, baseline, energy)
        self.barrier = barrier
        self.cuda_ordinals = _cuda_ordinals(devices)
        self.synchronize, self.sync_warning = _synchronizer(self.cuda_ordinals)
        self._baselines: Baselines | None = None
        self._gpu_infos: list[GpuInfo] | None = None

    def open_sources(self) -> EnergySources:
        """A fresh set of energy backends for one window."""
        return select_energy_backends(self.config.energy, self.cuda_ordinals)

    def baselines(self, sources: EnergySources) -> Baselines:
        """The idle baseline, measured (or read from llem's cache) once, before any window."""
        if self._baselines is None:
            from llenergymeasure.models.builtin import llem_cache_dir

            self._baselines = measure_baselines(
                sources.backends, self.config.baseline, llem_cache_dir() / "baseline.json"
            )
        return self._baselines

    def gpu_infos(self, sources: EnergySources) -> list[GpuInfo]:
        """The GPUs as they were when first opened (persistence mode, for its check).

        Kept once read; a window whose sources opened no GPU (NVML failing then) leaves
        the next window to read them.
        """
        if not self._gpu_infos:
            self._gpu_infos = [gpu.info() for gpu in sources.gpus]
        return self._gpu_infos


def _measurement_config(
    sample_interval_ms: int, baseline: bool | float, energy: EnergyChoice
) -> MeasurementConfig:
    try:
        baseline_config = (
            BaselineConfig(enabled=bool(baseline))
            if isinstance(baseline, bool)
            else BaselineConfig(duration_s=baseline)
        )
        return MeasurementConfig(
            energy=EnergyConfig(backend=energy, sample_interval_ms=sample_interval_ms),
            baseline=baseline_config,
        )
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"llem.measure: {where}: {first['msg']}") from None


def _cuda_ordinals(devices: Devices) -> list[int]:
    if devices is None:
        return _visible_cuda_devices()
    ordinals = []
    for device in devices:
        ordinal = cuda_ordinal(device)
        if ordinal is None:
            raise ConfigError(f"llem.measure: device {device!r} is not a CUDA ordinal or 'cuda:N'")
        ordinals.append(ordinal)
    return ordinals


def _visible_cuda_devices() -> list[int]:
    from llenergymeasure.core.device import visible_gpu_count

    return list(range(visible_gpu_count()))


def _synchronizer(ordinals: list[int]) -> tuple[Callable[[], None], MeasurementWarning | None]:
    if not ordinals:
        return (lambda: None), None
    from llenergymeasure.core.device import synchronize, visible_gpu_count

    if visible_gpu_count() == 0:
        return (lambda: None), MeasurementWarning(
            code="devices_not_synchronised",
            message=f"CUDA devices {ordinals} were measured but not synchronised at the "
            "window's edges (torch sees no CUDA device here): work queued on them may "
            "fall outside",
            remediation="install a CUDA build of torch, or synchronise the devices yourself",
        )
    devices = [f"cuda:{ordinal}" for ordinal in ordinals]

    def synchronize_all() -> None:
        for device in devices:
            synchronize(device)

    return synchronize_all, None
