"""The energy backend interface: an explicit measurement window."""

from __future__ import annotations

import socket
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from llenergymeasure.core.host import host_identity
from llenergymeasure.domain.metrics import EnergyMeasurement, EnergyMethod

IDLE_SUBWINDOWS = 5


IdleSource = Literal["counter", "power_reading", "model"]


@dataclass(frozen=True)
class IdlePower:
    """Idle power of one cacheable unit: a GPU, or one component a machine-level source reads.

    `source` says which instrument it came from: `counter`, the energy reading the
    window itself uses (an energy counter's delta over sub-windows: NVML's counter, RAPL,
    or the backend's own start/stop); `power_reading`, sampled power, used only where the
    device has no energy counter; `model`, the CPU estimate's model.
    """

    key: str
    power_w: float
    std_w: float
    component: str = "gpu"
    source: IdleSource = "counter"


class EnergyBackend(ABC):
    """Measures energy between `start()` and `stop()`.

    Subclasses read hardware counters (or model power) and return per-device joules.
    `scope` says whether a reading covers one device of this process or the whole
    machine; machine-level readings are counted once per host when aggregating.
    """

    method: EnergyMethod

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = socket.gethostname()
        self.device_ids: list[str] = []
        # CPU seconds this backend's own threads spent in the last window (its overhead).
        self.thread_cpu_s = 0.0
        self._clock = clock
        self._start_unix_s: float | None = None
        self._start_mono_s: float | None = None

    def start(self) -> None:
        """Open the window: remember the counters and the start time."""
        self._start_unix_s = time.time()
        self._start_mono_s = self._clock()
        self._begin()

    def stop(self) -> EnergyMeasurement:
        """Close the window and return what was measured over it."""
        if self._start_unix_s is None or self._start_mono_s is None:
            raise RuntimeError(f"{type(self).__name__}.stop() called before start()")
        duration_s = self._clock() - self._start_mono_s
        measurement = self._end(
            window_start_unix_s=self._start_unix_s,
            window_end_unix_s=self._start_unix_s + duration_s,
            duration_s=duration_s,
        )
        self._start_unix_s = self._start_mono_s = None
        return measurement

    def count_as_own(self, pids: Iterable[int]) -> None:  # noqa: B027 - most backends ignore it
        """Processes of the run besides this one (an engine's).

        A device backend does not count them as other work on its devices; machine-level
        backends ignore them.
        """

    def complete(
        self, reading: EnergyMeasurement, power_integrals_j: Mapping[int, float | None]
    ) -> EnergyMeasurement:
        """`reading` with the energy this backend takes from the window's sampled power.

        The window integrates its own samples once, after its sampler stopped, and hands
        the integral of each GPU's power (joules by NVML index) to every backend. A
        backend whose energy is that integral (NVML without an energy counter) leaves it
        null at `stop()` and fills it here; every other backend returns `reading`.
        """
        return reading

    @property
    def cache_key(self) -> str:
        """Identifies readings that are comparable (used to cache the idle baseline).

        The machine is named by its identity (boot id), not its host name: two machines
        that share a name and a cache directory must not share a baseline.
        """
        return f"{host_identity()}|{self.method}|{','.join(self.device_ids)}"

    @property
    def baseline_source(self) -> str:
        """The instrument behind `idle_power` (see `IdlePower.source`)."""
        return "counter"

    @property
    def baseline_keys(self) -> list[str]:
        """The cache keys of what `idle_power` returns, known before measuring."""
        return [f"{self.cache_key}|{kind}" for kind in self.components]

    @property
    def components(self) -> list[str]:
        """The component kinds this backend reads (`gpu`, `cpu`, `dram`)."""
        return ["cpu"]

    def idle_power(self, duration_s: float) -> list[IdlePower] | None:
        """Idle power over `duration_s`, per component; None when a device cannot be read.

        This default measures `IDLE_SUBWINDOWS` consecutive windows through `start` and
        `stop` (the same instrument as the inference window): per component, the mean and
        sample standard deviation of the sub-windows' power.
        """
        powers_w: dict[str, list[float]] = {kind: [] for kind in self.components}
        for _ in range(IDLE_SUBWINDOWS):
            self.start()
            time.sleep(duration_s / IDLE_SUBWINDOWS)
            measured = self.stop()
            if measured.duration_s <= 0:
                return None
            for kind in powers_w:
                energies = [d.energy_j for d in measured.devices if d.kind == kind]
                if not energies or any(e is None for e in energies):
                    return None
                powers_w[kind].append(sum(energies) / measured.duration_s)
        return [
            IdlePower(
                f"{self.cache_key}|{kind}",
                statistics.fmean(values),
                statistics.stdev(values),
                component=kind,
                source=self.baseline_source,
            )
            for kind, values in powers_w.items()
        ]

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release resources (threads, handles)."""

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement: ...
