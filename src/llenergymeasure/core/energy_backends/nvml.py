"""GPU energy from NVML, per device this process owns.

`nvml_counter`: the delta of `nvmlDeviceGetTotalEnergyConsumption` (mJ, Volta and newer;
the driver updates it about every 100 ms) between `start()` and `stop()`.
`nvml_power_integral`: where a device has no counter, the trapezoidal integral of its
power as the measurement window's own sampler read it every `interval_ms` (the instant
power field where the driver has it, else the 1 s averaged `nvmlDeviceGetPowerUsage`):
the window integrates its samples once and hands the result to `complete`.

Each device reading records its `energy_scope`: `gpu`, or `module` where the counter of a
GH200/GB200-class device covers the whole module (Grace CPU and memory included).

Devices are recorded by UUID. A MIG instance reports the energy of its whole parent GPU
(NVML has no per-instance power): it is flagged `is_mig` with the parent's UUID.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from llenergymeasure.core.energy_backends.base import IDLE_SUBWINDOWS, EnergyBackend, IdlePower
from llenergymeasure.core.energy_backends.nvml_device import NvmlDevice, PowerScope
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.errors import DeviceError
from llenergymeasure.log import logger

# The idle baseline's sub-window boundaries wait for the counter's next update: polled
# this often, for at most this long (more than any device's update period).
TICK_POLL_S = 0.005
TICK_TIMEOUT_S = 1.0

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

    def handover(self) -> dict[str, list[str]]:
        """What reading these devices changed: each device's power-reading switches."""
        return {d.uuid: list(d.power_field_switches) for d in self.devices}

    def take_over(self, state: object) -> None:
        """Adopt what a copy of this source changed while sampling in another process."""
        if isinstance(state, dict):
            for device in self.devices:
                device.adopt_switches(state.get(device.uuid, []))

    def temperatures_c(self) -> dict[str, float | None]:
        """Each device's temperature by UUID (None where it could not be read)."""
        return {d.uuid: self._guarded(d, "temperature_c") for d in self.devices}

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
        self._others: dict[str, list[int] | None] = {}
        self._own_pids: set[int] = set()
        for d in self.devices:
            if d.is_mig:
                logger.warning(
                    f"{d.uuid} is a MIG instance: its energy is that of the whole GPU "
                    f"{d.parent_uuid}, shared with every other instance on it"
                )

    @property
    def components(self) -> list[str]:
        """NVML reads GPUs only."""
        return ["gpu"]

    @property
    def baseline_keys(self) -> list[str]:
        """One key per physical GPU whose power is read (the parent's for MIG)."""
        return list(dict.fromkeys(self._baseline_key(d) for d in self.devices))

    def complete(
        self, reading: EnergyMeasurement, power_integrals_j: Mapping[int, float | None]
    ) -> EnergyMeasurement:
        """The reading once the window's sampler has stopped.

        Each device's power-reading switches as they are now (the sampler's reads,
        taken over from the sampling process, count too); without a counter, each
        device's energy is the window's integral of its power. `power_integrals_j` is
        keyed by NVML index (the physical GPU's, as the samples are); a device the window
        has no integral for stays null.
        """
        devices = []
        for device, entry in zip(self.devices, reading.devices, strict=True):
            switches = list(device.power_field_switches)
            update: dict[str, object] = {"power_reading_switches": switches}
            if self.method == "nvml_power_integral":
                update["energy_j"] = power_integrals_j.get(device.nvml_index)
            devices.append(entry.model_copy(update=update))
        return reading.model_copy(update={"devices": devices})

    def idle_power(self, duration_s: float) -> list[IdlePower] | None:
        """Idle power of each GPU over `duration_s`, from the instrument the window uses.

        With the energy counter (`nvml_counter`): the counter's delta over the period
        divided by its duration, and the sample stdev of the powers of
        `IDLE_SUBWINDOWS` consecutive sub-windows (source `counter`). Each boundary is
        taken just after the counter's next update (polled every `TICK_POLL_S`), so the
        deltas are not off by one update period; the period therefore lasts up to
        `IDLE_SUBWINDOWS + 1` update periods longer than `duration_s`. Without a
        counter: mean and sample stdev of power read every interval (source
        `power_reading`), at the scope the window's power integral uses.

        Returns:
            One entry per physical GPU (`baseline_keys`), or None where a device cannot
            be read (or its counter went backwards).

        Raises:
            DeviceError: an NVML read failed.

        """
        if self.method == "nvml_counter":
            return self._idle_from_counter(duration_s)
        return self._idle_from_power_readings(duration_s)

    def _idle_from_counter(self, duration_s: float) -> list[IdlePower] | None:
        devices = {self._baseline_key(d): d for d in self.devices}
        marks = [self._after_counter_update(devices)]
        for _ in range(IDLE_SUBWINDOWS):
            self._sleep(duration_s / IDLE_SUBWINDOWS)
            marks.append(self._after_counter_update(devices))
        if any(m is None for m in marks):
            return None
        idle = []
        for key in devices:
            points = [m[key] for m in marks if m is not None]
            if any(b[1] < a[1] for a, b in zip(points, points[1:], strict=False)):
                logger.warning(f"baseline: energy counter of {key} went backwards")
                return None
            powers_w = [_power_w(a, b) for a, b in zip(points, points[1:], strict=False)]
            mean_w = _power_w(points[0], points[-1])
            idle.append(IdlePower(key, mean_w, statistics.stdev(powers_w), source="counter"))
        return idle

    def _after_counter_update(
        self, devices: dict[str, NvmlDevice]
    ) -> dict[str, tuple[float, int]] | None:
        """(time, mJ) of each device's counter just after its next update.

        A counter that does not move within `TICK_TIMEOUT_S` is taken as it is.
        """
        first = {key: d.energy_mj() for key, d in devices.items()}
        if any(mj is None for mj in first.values()):
            return None
        deadline_s = self._clock() + TICK_TIMEOUT_S
        marks: dict[str, tuple[float, int]] = {}
        while len(marks) < len(devices):
            self._sleep(TICK_POLL_S)
            now_s = self._clock()
            for key, device in devices.items():
                if key in marks:
                    continue
                mj = device.energy_mj()
                if mj is None:
                    return None
                if mj != first[key] or now_s >= deadline_s:
                    marks[key] = (now_s, mj)
        return marks

    def _idle_from_power_readings(self, duration_s: float) -> list[IdlePower] | None:
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

    def _baseline_key(self, device: NvmlDevice) -> str:
        return f"{self.host}|gpu|{device.power_uuid}"

    def _begin(self) -> None:
        self._others = {d.uuid: self._other_processes(d) for d in self.devices}
        if self.method == "nvml_counter":
            self._start_mj = {d.uuid: self._counter_mj(d) for d in self.devices}

    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement:
        if self.method == "nvml_counter":
            energies: list[float | None] = [self._counter_delta_j(d) for d in self.devices]
            assumptions = []
        else:
            energies = [None] * len(self.devices)  # the window's integral, in `complete`
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
                    energy_scope=self._energy_scope(d),
                    other_processes=self._others_over_window(d),
                    power_reading_switches=list(d.power_field_switches),
                )
                for d, energy_j in zip(self.devices, energies, strict=True)
            ],
            window_start_unix_s=window_start_unix_s,
            window_end_unix_s=window_end_unix_s,
            duration_s=duration_s,
            assumptions=assumptions,
        )

    def count_as_own(self, pids: Iterable[int]) -> None:
        """The engine's processes (vLLM's engine core, an endpoint's server) are not others."""
        self._own_pids |= set(pids)

    def _other_processes(self, device: NvmlDevice) -> list[int] | None:
        try:
            pids = device.compute_processes()
        except DeviceError as e:
            logger.warning(f"NVML: compute processes of {device.uuid} unreadable: {e}")
            return None
        return None if pids is None else [pid for pid in pids if pid not in self._own_pids]

    def _others_over_window(self, device: NvmlDevice) -> list[int] | None:
        """Other compute processes seen on the GPU at the window's start or end."""
        seen = [self._others.get(device.uuid), self._other_processes(device)]
        known = [pids for pids in seen if pids is not None]
        return sorted({pid for pids in known for pid in pids}) if known else None

    def _energy_scope(self, device: NvmlDevice) -> PowerScope:
        """The counter's scope, or that of the power readings integrated without one."""
        return device.energy_scope if self.method == "nvml_counter" else device.power_scope

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


def _power_w(start: tuple[float, int], end: tuple[float, int]) -> float:
    """Mean power (W) between two (time, mJ) counter marks, the later one second."""
    (t0_s, mj0), (t1_s, mj1) = start, end
    return (mj1 - mj0) / 1000.0 / (t1_s - t0_s)
