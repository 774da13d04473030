"""The energy backend interface: an explicit measurement window."""

from __future__ import annotations

import socket
import time
from abc import ABC, abstractmethod

from llenergymeasure.domain.metrics import EnergyMeasurement, EnergyMethod


class EnergyBackend(ABC):
    """Measures energy between `start()` and `stop()`.

    Subclasses read hardware counters (or model power) and return per-device joules.
    `scope` says whether a reading covers one device of this process or the whole
    machine; machine-level readings are counted once per host when aggregating.
    """

    method: EnergyMethod

    def __init__(self) -> None:
        self.host = socket.gethostname()
        self.device_ids: list[str] = []
        self._start_unix_s: float | None = None
        self._start_mono_s: float | None = None

    def start(self) -> None:
        """Open the window: remember the counters and the start time."""
        self._start_unix_s = time.time()
        self._start_mono_s = time.monotonic()
        self._begin()

    def stop(self) -> EnergyMeasurement:
        """Close the window and return what was measured over it."""
        if self._start_unix_s is None or self._start_mono_s is None:
            raise RuntimeError(f"{type(self).__name__}.stop() called before start()")
        duration_s = time.monotonic() - self._start_mono_s
        measurement = self._end(
            window_start_unix_s=self._start_unix_s,
            window_end_unix_s=self._start_unix_s + duration_s,
            duration_s=duration_s,
        )
        self._start_unix_s = self._start_mono_s = None
        return measurement

    @property
    def cache_key(self) -> str:
        """Identifies readings that are comparable (used to cache the idle baseline)."""
        return f"{self.host}|{self.method}|{','.join(self.device_ids)}"

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release resources (threads, handles)."""

    @abstractmethod
    def _begin(self) -> None: ...

    @abstractmethod
    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement: ...
