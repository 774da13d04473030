"""The sampler's schedule and sources: power, temperature, memory and utilisation.

Each source returns `PowerThermalSample`s stamped with `time.monotonic()`, the clock
the latency hook uses too. A source that fails yields no sample for that tick plus one
logged warning; a source that fails for one field records null for it. The sampler never
stops the run.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

import psutil

from llenergymeasure.core.host_row import host_reader
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample
from llenergymeasure.log import logger


class SampleSource(Protocol):
    """Something that can be read once per tick.

    `errors` maps a reading that failed (and was recorded as null) to its last error.
    """

    name: str
    errors: dict[str, str]

    def read(self, t_s: float) -> list[PowerThermalSample]:
        """Return the samples of this tick (one per device)."""
        ...

    def handover(self) -> object:
        """What reading changed in this source, picklable.

        The sampling process reads a copy of each source and hands this to the
        original at the end (`take_over`).
        """
        ...

    def take_over(self, state: object) -> None:
        """Adopt the `handover` of a copy of this source."""
        ...


class CpuSampleSource:
    """Host CPU utilisation and this process's resident memory.

    On the CPU row `memory_used_mb` is the process RSS and `memory_total_mb` the host
    memory (docs/formats.md); power comes from the energy backend, not from here.

    The row is read every `min_interval_s` (100 ms by default) on the sampler's schedule,
    whatever the sampler's interval: the kernel counts CPU time in ticks of 4-10 ms, so
    utilisation over a shorter span is mostly rounding, and at a 10 ms interval the two
    /proc reads were most of the sampling process's work (docs/performance.md).
    """

    name = "cpu"

    def __init__(self, min_interval_s: float = 0.1) -> None:
        self.min_interval_s = min_interval_s
        self.errors: dict[str, str] = {}
        self._reader = host_reader(os.getpid())
        self._total_mb = psutil.virtual_memory().total / 2**20

    def handover(self) -> None:
        """Reading the host changes nothing to hand over."""

    def take_over(self, state: object) -> None:
        """Nothing to adopt (see `handover`)."""

    def read(self, t_s: float) -> list[PowerThermalSample]:
        """Utilisation since the previous read, and the RSS now."""
        return [
            PowerThermalSample(
                t_s=t_s,
                device_index=CPU_DEVICE_INDEX,
                memory_used_mb=self._reader.rss_mb(),
                memory_total_mb=self._total_mb,
                cpu_util_pct=self._reader.cpu_util_pct(),
            )
        ]


class PowerThermalSampler:
    """Samples every source at a fixed period until stopped, in a thread of this process.

    Ticks are scheduled on absolute times (start + k x interval), so a slow read does
    not shift the following ones; a tick that is already late is taken at once. A source
    with a `min_interval_s` longer than the interval is read every `stride` ticks (the
    fewest ticks that span it), and the sampler sleeps through ticks at which no source
    is due: with only the host row to read (a machine without GPUs) a 10 ms sampler wakes
    every 100 ms, as waking to read nothing would take a core from the inference for
    nothing. The same schedule runs in the sampling process (`core/sampler_process.py`),
    where the ticks take no time from this process's GIL; the thread is for clocks a
    child cannot share (a test's manual clock) and for machines where that process
    cannot start.
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
        # CPU seconds of the sampling itself over the last window (its overhead).
        self.cpu_s = 0.0
        self._clock = clock
        self._start_s = 0.0
        self.strides = [
            max(1, math.ceil(getattr(source, "min_interval_s", 0.0) / self.interval_s - 1e-9))
            for source in sources
        ]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Take the first sample now, then one per interval in a daemon thread."""
        self.begin()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llem-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> list[PowerThermalSample]:
        """Take a last sample, stop the thread and return every sample."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        return self.finish()

    def __enter__(self) -> PowerThermalSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def samples_since(self, count: int) -> list[PowerThermalSample]:
        """The samples after the first `count` (while sampling, or of the last window)."""
        return self.samples[count:]

    def begin(self) -> None:
        """Forget earlier samples and take the first one now (the schedule's origin)."""
        self.samples = []
        self._start_s = self._clock()
        self._tick()

    def run_until(self, stop_requested: Callable[[float], bool]) -> None:
        """Tick on schedule until `stop_requested(delay_s)`, a wait of at most delay_s, is True."""
        tick = self._next_due(1)
        while not stop_requested(self._delay_s(tick)):
            self._tick(tick)
            tick = self._next_due(tick + 1)

    def finish(self) -> list[PowerThermalSample]:
        """Take the last sample and return them all; source errors join `errors`."""
        self._tick()
        for source in self.sources:
            self.errors.update(source.errors)
        return self.samples

    def _run(self) -> None:
        self.thread_native_id = threading.get_native_id()
        cpu_start_s = time.thread_time()
        try:
            self.run_until(self._stop.wait)
        finally:
            # The sampler's own cost, read on its own thread's CPU clock.
            self.cpu_s = time.thread_time() - cpu_start_s

    def _delay_s(self, tick: int) -> float:
        return max(0.0, self._start_s + tick * self.interval_s - self._clock())

    def _next_due(self, tick: int) -> int:
        """The first tick from `tick` on at which some source is due."""
        return min((-(-tick // stride) * stride for stride in self.strides), default=tick)

    def _tick(self, tick: int | None = None) -> None:
        """Read the sources due at scheduled tick `tick`; all of them without one.

        The first and last ticks of a window read them all.
        """
        t_s = self._clock()
        for source, stride in zip(self.sources, self.strides, strict=True):
            if tick is not None and tick % stride:
                continue
            try:
                self.samples.extend(source.read(t_s))
            except Exception as exc:  # noqa: BLE001 - hardware reads must never end the run
                if source.name not in self.errors:
                    logger.warning(f"sampler: {source.name} read failed, samples skipped: {exc}")
                self.errors[source.name] = str(exc)
