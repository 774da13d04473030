"""A background thread that samples power, temperature, memory and utilisation.

Each source returns `PowerThermalSample`s stamped with `time.monotonic()`, the clock
the latency hook uses too. A source that fails yields no sample for that tick plus one
logged warning; the sampler never stops the run.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import psutil
from loguru import logger

CPU_DEVICE_INDEX = -1


@dataclass(frozen=True, slots=True)
class PowerThermalSample:
    """One reading of one device. GPU fields are None on the CPU row (index -1)."""

    t_s: float
    device_index: int
    power_w: float | None = None
    temperature_c: float | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    sm_utilisation_pct: float | None = None
    throttle_reasons: int | None = None
    cpu_util_pct: float | None = None


class SampleSource(Protocol):
    """Something that can be read once per tick."""

    name: str

    def read(self, t_s: float) -> list[PowerThermalSample]:
        """Return the samples of this tick (one per device)."""
        ...


class CpuSampleSource:
    """Host CPU utilisation and this process's resident memory.

    On the CPU row `memory_used_mb` is the process RSS and `memory_total_mb` the host
    memory (docs/formats.md); power comes from the energy backend, not from here.
    """

    name = "cpu"

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._total_mb = psutil.virtual_memory().total / 2**20
        psutil.cpu_percent(interval=None)  # prime: the first call has no interval

    def read(self, t_s: float) -> list[PowerThermalSample]:
        """Utilisation since the previous read, and the RSS now."""
        return [
            PowerThermalSample(
                t_s=t_s,
                device_index=CPU_DEVICE_INDEX,
                memory_used_mb=self._process.memory_info().rss / 2**20,
                memory_total_mb=self._total_mb,
                cpu_util_pct=psutil.cpu_percent(interval=None),
            )
        ]


class PowerThermalSampler:
    """Samples every source at a fixed period until stopped.

    Ticks are scheduled on absolute times (start + k x interval), so a slow read does
    not shift the following ones; a tick that is already late is taken at once.
    """

    def __init__(self, sources: list[SampleSource], interval_ms: int = 100) -> None:
        self.sources = sources
        self.interval_s = interval_ms / 1000.0
        self.samples: list[PowerThermalSample] = []
        self.errors: dict[str, str] = {}
        self.thread_native_id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling in a daemon thread (one sample is taken immediately)."""
        self.samples = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llem-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[PowerThermalSample]:
        """Take a last sample, stop the thread and return every sample."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._tick()
        return self.samples

    def __enter__(self) -> PowerThermalSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        self.thread_native_id = threading.get_native_id()
        start = time.monotonic()
        tick = 0
        while True:
            self._tick()
            tick += 1
            delay = start + tick * self.interval_s - time.monotonic()
            if self._stop.wait(max(0.0, delay)):
                return

    def _tick(self) -> None:
        t_s = time.monotonic()
        for source in self.sources:
            try:
                self.samples.extend(source.read(t_s))
            except Exception as exc:  # noqa: BLE001 - hardware reads must never end the run
                if source.name not in self.errors:
                    logger.warning(f"sampler: {source.name} read failed, samples skipped: {exc}")
                self.errors[source.name] = str(exc)
