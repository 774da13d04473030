"""The measurement window: one sampler and the energy backends around a body of work.

```
(sampler created) -> synchronise -> sampler start -> energy start -> body -> synchronise
-> (busy end) -> wait for every process -> energy stop -> sampler stop -> power integral
```

The sampler runs in a child process (`core/sampler_process.py`), created with the window
so that its start-up is outside it, and ended when the window closes; or lent by its
owner (`llem.measure`, which keeps one child for all its windows), stopped but kept; or
in a thread of this process where a child cannot share the window's clock or cannot be
started (then with a `sampler_errors` entry). The
window integrates its own GPU power samples once, over its own edges
(`power_integrals_j`): that integral is the energy of a GPU without an energy counter
(`EnergyBackend.complete`) and the cross-check of one with a counter.

The energy window stays open until every process of the experiment has finished its
body (`wait_for_all`, a barrier): a GPU whose shard ended early is idle but powered until
the experiment ends, and that tail belongs to the experiment's energy. The process's own
busy time (start to the end of its body) is recorded beside it, for its throughput.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.host import CpuTimeFigures, CpuTimeWindow
from llenergymeasure.core.power_integral import power_integrals_j, total_integral_j
from llenergymeasure.core.power_thermal import CpuSampleSource, PowerThermalSampler, SampleSource
from llenergymeasure.core.sampler_process import ERROR_KEY, ProcessSampler, can_fork
from llenergymeasure.domain.metrics import EnergyMeasurement
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.log import logger

T = TypeVar("T")
Sampling = Literal["process", "thread"]


def window_sample_sources(gpu_source: SampleSource | None) -> list[SampleSource]:
    """What a window samples: this process and its host, and the GPUs NVML reads."""
    return [CpuSampleSource(), *([gpu_source] if gpu_source is not None else [])]


@dataclass
class WindowResult(Generic[T]):
    """What the body returned and everything observed while the window was open.

    `busy_s` runs from the energy start to the end of the body (this process's work),
    `window_s` from the energy start to the energy stop (the experiment's common window);
    `cpu_time` is this process's CPU time against the host's over the energy window.
    `gpu_power_integrals_j` is the integral of each GPU's sampled power over the energy
    window, by NVML index (empty without GPU samples).
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
    gpu_power_integrals_j: dict[int, float | None] = field(default_factory=dict)

    @property
    def power_integral_j(self) -> float | None:
        """The integral of sampled GPU power summed over GPUs; None where one has a gap."""
        return total_integral_j(self.gpu_power_integrals_j)

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
    public API's context manager and named windows). `sampling` is `process` (the
    sampler in a child, the default) or `thread` (in this process: needed where `clock`
    is not `time.monotonic`, which a child cannot share). `count_as_own(pids)` adds the
    processes the engine runs in besides this one: their CPU time is this process's work.
    `sampler`: a sampling process lent for this window, reading `sources`, that its owner
    keeps and closes; None: the window opens its own and ends it when it closes.
    """

    def __init__(
        self,
        backends: Sequence[EnergyBackend],
        sources: list[SampleSource],
        interval_ms: int,
        synchronize: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sampling: Sampling = "process",
        sampler: ProcessSampler | None = None,
    ) -> None:
        if sampling == "process" and clock is not time.monotonic:
            raise ValueError("a sampling process shares time.monotonic only: use threads")
        self.backends = list(backends)
        self._owns_sampler = sampler is None
        self.sampler = sampler or _open_sampler(sources, interval_ms, clock, sampling)
        self.cpu_time = CpuTimeWindow()
        self.synchronize = synchronize
        self.start_unix_s = 0.0
        self._start_mono_s = 0.0
        self._clock = clock

    def count_as_own(self, pids: Sequence[int]) -> None:
        """Count `pids`, the engine's own processes, as this process's.

        Their CPU time is this process's, and a GPU they compute on is not shared.
        """
        self.cpu_time.add_processes(pids)
        for backend in self.backends:
            backend.count_as_own(pids)

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
        return self.sampler.samples_since(count)

    def abandon(self) -> None:
        """Stop the sampler and the energy backends of a window whose body failed."""
        for backend in self.backends:
            with contextlib.suppress(Exception):
                backend.stop()
        with contextlib.suppress(Exception):
            self.sampler.stop()
        self.close()

    def end(self, value: T, wait_for_all: Callable[[], None] = lambda: None) -> WindowResult[T]:
        """Synchronise (the end of this process's work), wait for every process, stop."""
        self.synchronize()
        busy_s = self._clock() - self._start_mono_s
        wait_for_all()
        readings = [backend.stop() for backend in self.backends]
        cpu_time = self.cpu_time.stop()
        window_s = self._clock() - self._start_mono_s
        samples = self.sampler.stop()
        self.close()
        integrals_j = power_integrals_j(samples, self._start_mono_s, self._start_mono_s + window_s)
        return WindowResult(
            value=value,
            readings=[
                b.complete(r, integrals_j) for b, r in zip(self.backends, readings, strict=True)
            ],
            samples=samples,
            sampler_errors=dict(self.sampler.errors),
            start_mono_s=self._start_mono_s,
            start_unix_s=self.start_unix_s,
            busy_s=busy_s,
            window_s=window_s,
            cpu_time=cpu_time,
            measurement_cpu_s=self.sampler.cpu_s
            + sum(backend.thread_cpu_s for backend in self.backends),
            gpu_power_integrals_j=integrals_j,
        )

    def close(self) -> None:
        """End the window's own sampling process (once); a lent one is its owner's to close.

        `end` and `abandon` close it; a window that never ran is closed by its opener.
        """
        if self._owns_sampler and isinstance(self.sampler, ProcessSampler):
            self.sampler.close()


def _open_sampler(
    sources: list[SampleSource], interval_ms: int, clock: Callable[[], float], sampling: Sampling
) -> ProcessSampler | PowerThermalSampler:
    """The sampling process; a thread where asked for, or where the process cannot start."""
    if sampling == "thread":
        return PowerThermalSampler(sources, interval_ms, clock=clock)
    problem = "this platform cannot fork"
    if can_fork():
        try:
            return ProcessSampler(sources, interval_ms)
        except OSError as e:
            problem = str(e)
    logger.warning(f"sampler: no sampling process ({problem}); sampling in a thread instead")
    thread = PowerThermalSampler(sources, interval_ms, clock=clock)
    thread.errors[ERROR_KEY] = f"sampled in a thread of the worker instead: {problem}"
    return thread
