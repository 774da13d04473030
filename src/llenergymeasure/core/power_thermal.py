"""A background thread that samples power, temperature, memory and utilisation.

Each source returns `PowerThermalSample`s stamped with `time.monotonic()`, the clock
the latency hook uses too. A source that fails yields no sample for that tick plus one
logged warning; a source that fails for one field records null for it. The sampler never
stops the run.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
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
    """Something that can be read once per tick.

    `errors` maps a reading that failed (and was recorded as null) to its last error.
    """

    name: str
    errors: dict[str, str]

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
        self.errors: dict[str, str] = {}
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

    def __init__(
        self,
        sources: list[SampleSource],
        interval_ms: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources = sources
        self.interval_s = interval_ms / 1000.0
        self.samples: list[PowerThermalSample] = []
        self.errors: dict[str, str] = {}
        self.thread_native_id: int | None = None
        self.thread_cpu_s = 0.0
        self._clock = clock
        self._start_s = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the first sample now, then one per interval in a daemon thread."""
        self.samples = []
        self._stop.clear()
        self._start_s = self._clock()
        self._tick()
        self._thread = threading.Thread(target=self._run, name="llem-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[PowerThermalSample]:
        """Take a last sample, stop the thread and return every sample."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._tick()
        for source in self.sources:
            self.errors.update(source.errors)
        return self.samples

    def __enter__(self) -> PowerThermalSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        self.thread_native_id = threading.get_native_id()
        cpu_start_s = time.thread_time()
        tick = 1
        try:
            while not self._stop.wait(self._delay_s(tick)):
                self._tick()
                tick += 1
        finally:
            # The sampler's own cost, read on its own thread's CPU clock.
            self.thread_cpu_s = time.thread_time() - cpu_start_s

    def _delay_s(self, tick: int) -> float:
        return max(0.0, self._start_s + tick * self.interval_s - self._clock())

    def _tick(self) -> None:
        t_s = self._clock()
        for source in self.sources:
            try:
                self.samples.extend(source.read(t_s))
            except Exception as exc:  # noqa: BLE001 - hardware reads must never end the run
                if source.name not in self.errors:
                    logger.warning(f"sampler: {source.name} read failed, samples skipped: {exc}")
                self.errors[source.name] = str(exc)


def power_readings_per_device(samples: Sequence[PowerThermalSample]) -> dict[int, int]:
    """Power readings per device (not sampler ticks): what an integral or cross-check rests on.

    CPU rows carry no power (it comes from the energy backend) and are not counted.
    """
    counts: dict[int, int] = defaultdict(int)
    for s in samples:
        if s.device_index != CPU_DEVICE_INDEX and s.power_w is not None:
            counts[s.device_index] += 1
    return dict(counts)


def power_integral_j(
    samples: Sequence[PowerThermalSample],
    start_s: float | None = None,
    end_s: float | None = None,
) -> float | None:
    """Trapezoidal integral of sampled device power, summed over devices, in joules.

    Each device's series is clipped to [start_s, end_s] (default: its own first and last
    sample) with the power interpolated linearly at the bounds. CPU rows carry no power
    and are skipped. None when no device, or a device, has fewer than two readings.
    """
    by_device: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        if s.device_index != CPU_DEVICE_INDEX and s.power_w is not None:
            by_device[s.device_index].append((s.t_s, s.power_w))
    if not by_device:
        return None
    total_j = 0.0
    for points in by_device.values():
        energy_j = _trapezoid_j(sorted(points), start_s, end_s)
        if energy_j is None:
            return None
        total_j += energy_j
    return total_j


def _trapezoid_j(
    points: list[tuple[float, float]], start_s: float | None, end_s: float | None
) -> float | None:
    if len(points) < 2:
        return None
    lo = points[0][0] if start_s is None else start_s
    hi = points[-1][0] if end_s is None else end_s
    if hi <= lo:
        return 0.0
    inside = [(t, p) for t, p in points if lo < t < hi]
    series = [(lo, _power_at(points, lo)), *inside, (hi, _power_at(points, hi))]
    return sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairwise(series))


def _power_at(points: list[tuple[float, float]], t_s: float) -> float:
    """Linear between neighbouring readings; the nearest reading outside the series."""
    if t_s <= points[0][0]:
        return points[0][1]
    if t_s >= points[-1][0]:
        return points[-1][1]
    i = bisect.bisect_right([t for t, _ in points], t_s)
    (t0, p0), (t1, p1) = points[i - 1], points[i]
    return p0 + (p1 - p0) * (t_s - t0) / (t1 - t0)
