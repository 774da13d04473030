"""The measurement window: one sampler and the energy backends around a body of work.

```
synchronise -> sampler start -> energy start -> body -> synchronise -> (busy end)
-> wait for every process -> energy stop -> sampler stop
```

The energy window stays open until every process of the experiment has finished its
body (`wait_for_all`, a barrier): a GPU whose shard ended early is idle but powered until
the experiment ends, and that tail belongs to the experiment's energy. The process's own
busy time (start to the end of its body) is recorded beside it, for its throughput.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.host import CpuTimeFigures, CpuTimeWindow
from llenergymeasure.core.power_thermal import (
    CpuSampleSource,
    PowerThermalSample,
    PowerThermalSampler,
    SampleSource,
)
from llenergymeasure.domain.metrics import EnergyMeasurement

T = TypeVar("T")


def window_sample_sources(gpu_source: SampleSource | None) -> list[SampleSource]:
    """What a window samples: this process and its host, and the GPUs NVML reads."""
    return [CpuSampleSource(), *([gpu_source] if gpu_source is not None else [])]


@dataclass
class WindowResult(Generic[T]):
    """What the body returned and everything observed while the window was open.

    `busy_s` runs from the energy start to the end of the body (this process's work),
    `window_s` from the energy start to the energy stop (the experiment's common window);
    `cpu_time` is this process's CPU time against the host's over the energy window.
    """

    value: T
    readings: list[EnergyMeasurement]
    samples: list[PowerThermalSample]
    sampler_errors: dict[str, str]
    start_mono_s: float
    start_unix_s: float
    busy_s: float
    window_s: float
    cpu_time: CpuTimeFigures
    measurement_cpu_s: float = 0.0

    @property
    def busy_end_unix_s(self) -> float:
        """When this process's own work ended (wall clock)."""
        return self.start_unix_s + self.busy_s

    @property
    def end_unix_s(self) -> float:
        """When the energy window closed (wall clock)."""
        return self.start_unix_s + self.window_s


class MeasurementWindow:
    """Measures energy and samples devices around a body of work.

    `run(body)` for a call; `begin()` and `end(value)` where the body is not a call (the
    public API's context manager and named windows). `helper_pids` are the processes the
    engine runs in besides this one; their CPU time is this process's work.
    """

    def __init__(
        self,
        backends: Sequence[EnergyBackend],
        sources: list[SampleSource],
        interval_ms: int,
        synchronize: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        helper_pids: Sequence[int] = (),
    ) -> None:
        self.backends = list(backends)
        self.sampler = PowerThermalSampler(sources, interval_ms, clock=clock)
        self.cpu_time = CpuTimeWindow(helper_pids)
        self.synchronize = synchronize
        self.start_unix_s = 0.0
        self._start_mono_s = 0.0
        self._clock = clock

    def run(
        self, body: Callable[[], T], wait_for_all: Callable[[], None] = lambda: None
    ) -> WindowResult[T]:
        """Open the window, run `body`, wait for every process, close the window."""
        self.begin()
        try:
            value = body()
        except BaseException:
            self.abandon()
            raise
        return self.end(value, wait_for_all)

    def begin(self) -> None:
        """Synchronise, then start the sampler, the energy backends and the CPU clocks."""
        self.synchronize()
        self.sampler.start()
        self.start_unix_s, self._start_mono_s = time.time(), self._clock()
        for backend in self.backends:
            backend.start()
        self.cpu_time.start()

    def samples_since(self, count: int) -> list[PowerThermalSample]:
        """The samples taken after the first `count` of this window, read while it is open.

        Live telemetry (`core/live_telemetry.py`) reads this about once a second while the
        body runs; the samples already read are not copied again.
        """
        return self.sampler.samples[count:]

    def abandon(self) -> None:
        """Stop the sampler and the energy backends of a window whose body failed."""
        for backend in self.backends:
            with contextlib.suppress(Exception):
                backend.stop()
        with contextlib.suppress(Exception):
            self.sampler.stop()

    def end(self, value: T, wait_for_all: Callable[[], None] = lambda: None) -> WindowResult[T]:
        """Synchronise (the end of this process's work), wait for every process, stop."""
        self.synchronize()
        busy_s = self._clock() - self._start_mono_s
        wait_for_all()
        readings = [backend.stop() for backend in self.backends]
        cpu_time = self.cpu_time.stop()
        window_s = self._clock() - self._start_mono_s
        samples = self.sampler.stop()
        return WindowResult(
            value=value,
            readings=readings,
            samples=samples,
            sampler_errors=dict(self.sampler.errors),
            start_mono_s=self._start_mono_s,
            start_unix_s=self.start_unix_s,
            busy_s=busy_s,
            window_s=window_s,
            cpu_time=cpu_time,
            measurement_cpu_s=self.sampler.thread_cpu_s
            + sum(backend.thread_cpu_s for backend in self.backends),
        )
