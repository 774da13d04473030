"""GPU energy from NVML, per device this process owns.

`nvml_counter`: the delta of `nvmlDeviceGetTotalEnergyConsumption` (mJ, Volta and newer;
the driver updates it about every 100 ms) between `start()` and `stop()`.
`nvml_power_integral`: where a device has no counter, the trapezoidal integral of its
power sampled every `interval_ms` (the instant power field where the driver has it, else
the 1 s averaged `nvmlDeviceGetPowerUsage`).

Devices are recorded by UUID. A MIG instance reports the energy of its whole parent GPU
(NVML has no per-instance power): it is flagged `is_mig` with the parent's UUID.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from loguru import logger

from llenergymeasure.core.energy_backends.base import EnergyBackend, IdlePower
from llenergymeasure.core.energy_backends.nvml_device import NvmlDevice, open_cuda_devices
from llenergymeasure.core.power_thermal import (
    PowerThermalSample,
    PowerThermalSampler,
    power_integral_j,
)
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement
from llenergymeasure.errors import DeviceError

_READERS: dict[str, Callable[[NvmlDevice], Any]] = {
    "power_w": NvmlDevice.power_w,
    "temperature_c": NvmlDevice.temperature_c,
    "memory": NvmlDevice.memory_mb,
    "sm_utilisation_pct": NvmlDevice.sm_utilisation_pct,
    "throttle_reasons": NvmlDevice.clock_event_reasons,
}


class NvmlSampleSource:
    """The sampler's GPU source: one `PowerThermalSample` per device and tick.

    Five NVML reads per device and tick, on handles looked up once; no process queries.
    A reading that fails records null and one warning; unsupported ones are not retried.
    Samples carry the NVML index of the physical GPU (the parent's for MIG).
    """

    name = "nvml"

    def __init__(self, devices: Sequence[NvmlDevice], power_only: bool = False) -> None:
        self.devices = list(devices)
        self.errors: dict[str, str] = {}
        self._fields = ["power_w"] if power_only else list(_READERS)

    def read(self, t_s: float) -> list[PowerThermalSample]:
        """One sample per device, stamped `t_s`."""
        return [self._sample(device, t_s) for device in self.devices]

    def _sample(self, device: NvmlDevice, t_s: float) -> PowerThermalSample:
        values = {field: self._guarded(device, field) for field in self._fields}
        memory = values.pop("memory", None)
        return PowerThermalSample(
            t_s=t_s,
            device_index=device.nvml_index,
            memory_used_mb=memory[0] if memory else None,
            memory_total_mb=memory[1] if memory else None,
            **values,
        )

    def _guarded(self, device: NvmlDevice, field: str) -> Any:
        try:
            return _READERS[field](device)
        except DeviceError as e:
            key = f"nvml {device.uuid} {field}"
            if key not in self.errors:
                logger.warning(f"sampler: {key} read failed, null recorded: {e}")
            self.errors[key] = str(e)
            return None


def open_gpu_sample_source(cuda_ordinals: Sequence[int]) -> NvmlSampleSource | None:
    """The GPU source for these CUDA devices; None (with a warning) where NVML cannot read."""
    if not cuda_ordinals:
        return None
    try:
        return NvmlSampleSource(open_cuda_devices(cuda_ordinals))
    except DeviceError as e:
        logger.warning(f"no GPU power/thermal samples: {e}")
        return None


class NvmlBackend(EnergyBackend):
    """Energy of this process's GPUs over the window (scope `device`, one entry per UUID)."""

    def __init__(
        self,
        devices: Sequence[NvmlDevice],
        interval_ms: int = 100,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(clock)
        if not devices:
            raise ValueError("NvmlBackend needs at least one device")
        self.devices = list(devices)
        self.device_ids = [d.uuid for d in self.devices]
        self.interval_ms = interval_ms
        self._sleep = sleep
        has_counter = all(d.energy_mj() is not None for d in self.devices)
        self.method = "nvml_counter" if has_counter else "nvml_power_integral"
        self._start_mj: dict[str, int | None] = {}
        self._sampler: PowerThermalSampler | None = None
        for d in self.devices:
            if d.is_mig:
                logger.warning(
                    f"{d.uuid} is a MIG instance: its energy is that of the whole GPU "
                    f"{d.parent_uuid}, shared with every other instance on it"
                )

    @classmethod
    def for_cuda_devices(cls, cuda_ordinals: Sequence[int], interval_ms: int = 100) -> NvmlBackend:
        """The backend for this process's CUDA devices (`cuda:N` ordinals)."""
        return cls(open_cuda_devices(cuda_ordinals), interval_ms)

    @property
    def components(self) -> list[str]:
        """NVML reads GPUs only."""
        return ["gpu"]

    @property
    def baseline_keys(self) -> list[str]:
        """One key per physical GPU whose power is read (the parent's for MIG)."""
        return list(dict.fromkeys(self._baseline_key(d) for d in self.devices))

    def idle_power(self, duration_s: float) -> list[IdlePower] | None:
        """Mean and sample stdev of each GPU's power read every interval for `duration_s`."""
        interval_s = self.interval_ms / 1000.0
        readings: dict[str, list[float]] = {key: [] for key in self.baseline_keys}
        for k in range(max(2, round(duration_s / interval_s))):
            if k:
                self._sleep(interval_s)
            for d in self.devices:
                power_w = d.power_w()
                if power_w is None:
                    return None
                readings[self._baseline_key(d)].append(power_w)
        return [
            IdlePower(
                key,
                statistics.fmean(values),
                statistics.stdev(values),
                component="gpu",
                source="power_reading",
            )
            for key, values in readings.items()
        ]

    def close(self) -> None:
        """Stop the power sampler of an open `nvml_power_integral` window."""
        if self._sampler is not None:
            self._sampler.stop()
            self._sampler = None

    def _baseline_key(self, device: NvmlDevice) -> str:
        return f"{self.host}|gpu|{device.power_uuid}"

    def _begin(self) -> None:
        if self.method == "nvml_counter":
            self._start_mj = {d.uuid: self._counter_mj(d) for d in self.devices}
            return
        source = NvmlSampleSource(self.devices, power_only=True)
        self._sampler = PowerThermalSampler([source], self.interval_ms, clock=self._clock)
        self._sampler.start()

    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement:
        if self.method == "nvml_counter":
            energies = [self._counter_delta_j(d) for d in self.devices]
            assumptions = []
        else:
            energies = self._power_integrals_j()
            assumptions = [
                f"GPU power of {d.uuid} read every {self.interval_ms} ms from {d.power_field}, "
                "integrated with the trapezoidal rule (no energy counter on this GPU)"
                for d in self.devices
            ]
        return EnergyMeasurement(
            method=self.method,
            host=self.host,
            devices=[
                DeviceEnergy(
                    device_id=d.uuid,
                    kind="gpu",
                    scope="device",
                    energy_j=energy_j,
                    name=d.name,
                    is_mig=d.is_mig,
                    parent_uuid=d.parent_uuid,
                )
                for d, energy_j in zip(self.devices, energies, strict=True)
            ],
            window_start_unix_s=window_start_unix_s,
            window_end_unix_s=window_end_unix_s,
            duration_s=duration_s,
            assumptions=assumptions,
        )

    def _counter_mj(self, device: NvmlDevice) -> int | None:
        try:
            return device.energy_mj()
        except DeviceError as e:
            logger.warning(f"energy counter of {device.uuid} unreadable, energy is null: {e}")
            return None

    def _counter_delta_j(self, device: NvmlDevice) -> float | None:
        start_mj = self._start_mj.get(device.uuid)
        end_mj = self._counter_mj(device)
        if start_mj is None or end_mj is None:
            return None
        if end_mj < start_mj:
            logger.warning(
                f"energy counter of {device.uuid} went backwards (driver reloaded?): energy is null"
            )
            return None
        return (end_mj - start_mj) / 1000.0

    def _power_integrals_j(self) -> list[float | None]:
        samples = []
        if self._sampler is not None:
            samples = self._sampler.stop()
            self.thread_cpu_s = self._sampler.thread_cpu_s
        self._sampler = None
        return [
            power_integral_j([s for s in samples if s.device_index == d.nvml_index])
            for d in self.devices
        ]
