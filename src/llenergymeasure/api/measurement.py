"""Energy of a block of the caller's own code: `measure` and `EnergyMonitor`.

Both open the same window as `llem run` (`core/window.py`): synchronise the devices,
start the sampler and the energy backends, run the caller's code, synchronise, stop the
backends, stop the sampler. A `measure` object forks its sampling process once, when it
is created, and lends it to each of its windows (`api/kept_sampler.py`); an
`EnergyMonitor`'s windows, which may overlap, each fork their own. The energy is
accounted by component and boundary with the idle baseline subtracted where one was
asked for (`core/energy_accounting.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from llenergymeasure.api.devices import Devices, EnergyChoice, WindowDevices
from llenergymeasure.api.kept_sampler import KeptSampler
from llenergymeasure.core.window import MeasurementWindow, WindowResult, window_sample_sources
from llenergymeasure.core.window_summary import summarise_window
from llenergymeasure.defaults import SAMPLE_INTERVAL_MS
from llenergymeasure.domain.energy import ComponentEnergy, EnergyBoundary
from llenergymeasure.domain.metrics import (
    EnergyBreakdown,
    EnergyMeasurement,
    ExtendedMetrics,
    MeasurementWarning,
    ThermalThrottleInfo,
)
from llenergymeasure.domain.samples import PowerThermalSample

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Measurement:
    """What one window measured; filled when the window closes (`done`).

    `energy_j` is the headline boundary's raw energy (`gpu` on GPUs, `cpu_dram` on the
    CPU), `above_idle_j` the same less the idle baseline (None without a baseline).
    `busy_s` runs to the end of the body, `duration_s` to the energy stop (later where a
    `barrier` waited for other processes). `measurement_cpu_s` is the CPU time the
    sampling process and the backends' own threads spent over the window (the
    measurement's overhead). `thermal_throttle` and `extended` (memory, utilisation, CPU
    time) are read from the window's samples, as in a run's result; `warnings` are the
    checks `llem run` makes of a process (`core/window_summary.py`).
    """

    name: str | None = None
    done: bool = False
    components: list[ComponentEnergy] = field(default_factory=list)
    boundaries: list[EnergyBoundary] = field(default_factory=list)
    breakdown: EnergyBreakdown | None = None
    warnings: list[MeasurementWarning] = field(default_factory=list)
    samples: list[PowerThermalSample] = field(default_factory=list)
    readings: list[EnergyMeasurement] = field(default_factory=list)
    thermal_throttle: ThermalThrottleInfo | None = None
    extended: ExtendedMetrics | None = None
    cuda_ordinals: list[int] = field(default_factory=list)
    sample_interval_ms: int | None = None
    start_unix_s: float | None = None
    duration_s: float | None = None
    busy_s: float | None = None
    measurement_cpu_s: float | None = None

    @property
    def energy_j(self) -> float | None:
        """Raw joules of the headline boundary; None where not measured."""
        return self.breakdown.raw_j if self.breakdown is not None else None

    @property
    def above_idle_j(self) -> float | None:
        """Joules of the headline boundary above the idle baseline; None without one."""
        return self.breakdown.adjusted_j if self.breakdown is not None else None

    @property
    def boundary(self) -> str | None:
        """The headline boundary's name (`gpu` or `cpu_dram`)."""
        return self.breakdown.boundary if self.breakdown is not None else None

    @property
    def methods(self) -> dict[str, str]:
        """How each component was measured (`nvml_counter`, `rapl`, `cpu_estimate`...)."""
        return {c.component: c.method for c in self.components}


class _OpenWindow:
    """One window between `begin` and `end`.

    With `kept` (a `measure` object's), the window uses the sampling process and the
    backends it keeps, unless they are lent to another window or its child has ended;
    otherwise it opens its own, as every `EnergyMonitor` window does.
    """

    def __init__(
        self, devices: WindowDevices, name: str | None, kept: KeptSampler | None = None
    ) -> None:
        self.devices = devices
        self.measurement = Measurement(
            name=name,
            cuda_ordinals=list(devices.cuda_ordinals),
            sample_interval_ms=devices.config.energy.sample_interval_ms,
        )
        lent = kept.lend() if kept is not None else None
        self.kept = kept if lent is not None else None
        self.kept_problem = kept.problem if kept is not None else None
        self.sources = kept.sources if self.kept is not None else devices.open_sources()
        try:
            self.baselines = devices.baselines(self.sources)
            self.gpus = devices.gpu_infos(self.sources)
            self.window = MeasurementWindow(
                self.sources.backends,
                lent.sources
                if lent is not None
                else window_sample_sources(self.sources.gpu_sample_source()),
                devices.config.energy.sample_interval_ms,
                devices.synchronize,
                sampler=lent,
            )
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        """Give the kept sampler back, or close the window's own sources."""
        if self.kept is not None:
            self.kept.give_back()
        else:
            self.sources.close()

    def begin(self) -> Measurement:
        if self.devices.barrier is not None:
            self.devices.barrier()  # every process opens its window together
        self.window.begin()
        self.measurement.start_unix_s = self.window.start_unix_s
        return self.measurement

    def abandon(self) -> None:
        """A window whose opening failed: stop what started, give the sampler back."""
        try:
            self.window.abandon()
        finally:
            self._release()

    def end(self) -> Measurement:
        try:
            result = self.window.end(None, self.devices.barrier or (lambda: None))
        finally:
            self._release()
        return self._fill(result)

    def _fill(self, result: WindowResult[None]) -> Measurement:
        summary = summarise_window(
            result,
            baselines=self.baselines,
            sources=self.sources,
            config=self.devices.config,
            has_gpu=bool(self.devices.cuda_ordinals),
            gpus=self.gpus,
            # The processes a barrier joins are each other's "others" on a shared host.
            check_contention=self.devices.barrier is None,
        )
        own = [w for w in (self.devices.sync_warning, self._kept_warning()) if w is not None]
        account = summary.account
        m = self.measurement
        m.components, m.boundaries, m.breakdown = (
            account.components,
            account.boundaries,
            account.breakdown,
        )
        m.warnings = summary.warnings + own
        m.thermal_throttle, m.extended = summary.thermal_throttle, summary.extended
        m.samples, m.readings = result.samples, result.readings
        m.start_unix_s, m.busy_s, m.duration_s = result.start_unix_s, result.busy_s, result.window_s
        m.measurement_cpu_s = result.measurement_cpu_s
        m.done = True
        return m

    def _kept_warning(self) -> MeasurementWarning | None:
        """Why this window forked its own sampling process where it was to be lent one."""
        if self.kept_problem is None:
            return None
        return MeasurementWarning(
            code="sampler_error",
            message=f"{self.kept_problem}; this window forked its own as it opened (with "
            "a model loaded, the fork and its copy-on-write faults may slow the body)",
            remediation="create a new llem.measure object (before loading the model)",
        )


class measure:  # noqa: N801 - used as a function: `with llem.measure():`, `@llem.measure()`
    """Measure the energy of a block of code, as a context manager or a decorator.

    ```python
    with llem.measure() as m:
        model.generate(**inputs)
    print(m.energy_j, m.methods, m.warnings)
    ```

    As a decorator, each call is measured and the latest call's `Measurement` is the
    wrapper's `last_measurement` (None before the first call); the function's return
    value is unchanged.

    The sampling process is forked when the object is created and serves each of its
    windows in turn; create the object before loading the model, so that the child
    shares almost none of the model's memory (docs/performance.md). A window opened
    inside another of the same object forks its own. The child ends when the object is
    garbage-collected or the process exits.

    Args:
        devices: CUDA devices to measure and synchronise (ordinals or `"cuda:N"`); None:
            every CUDA device this process sees where torch has CUDA, else the CPU only.
        sample_interval_ms: the sampler's period (power, temperature, utilisation).
        baseline: False: no idle baseline; True: the default 5 s baseline (cached for an
            hour, shared with `llem run`); a number: a baseline of that many seconds.
        energy: the energy source (`measurement.energy.backend`); `auto` reads NVML for
            the GPUs and RAPL, else the labelled estimate, for the host.
        barrier: called before the window opens and after the body, before the energy
            stops (e.g. `torch.distributed.barrier`): every process's window then opens
            together and covers the whole job, as in `llem run`. Such a window is one of
            several processes, which on a shared host are each other's other work: as in
            a multi-process `llem run`, it records the CPU figures (`extended`) without a
            `host_contention` warning.

    Raises:
        ConfigError: an argument is out of range or not one of the choices.
        DeviceError: an explicitly requested energy source is unavailable here.

    """

    def __init__(
        self,
        devices: Devices = None,
        sample_interval_ms: int = SAMPLE_INTERVAL_MS,
        baseline: bool | float = False,
        energy: EnergyChoice = "auto",
        barrier: Callable[[], None] | None = None,
    ) -> None:
        self._devices = WindowDevices(devices, sample_interval_ms, baseline, energy, barrier)
        self._kept = KeptSampler(self._devices.open_sources, sample_interval_ms)
        self._open: list[_OpenWindow] = []

    @property
    def cuda_ordinals(self) -> list[int]:
        """The CUDA devices measured."""
        return list(self._devices.cuda_ordinals)

    def __enter__(self) -> Measurement:
        window = _OpenWindow(self._devices, name=None, kept=self._kept)
        try:
            measurement = window.begin()
        except BaseException:
            window.abandon()
            raise
        self._open.append(window)
        return measurement

    def __exit__(self, *exc: object) -> None:
        self._open.pop().end()

    def __call__(self, fn: F) -> F:
        """Decorate `fn`: every call is measured; the latest is `fn.last_measurement`."""

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self as measured:
                wrapper.last_measurement = measured  # type: ignore[attr-defined]
                return fn(*args, **kwargs)

        wrapper.last_measurement = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]


class EnergyMonitor:
    """Named windows that may nest and overlap, like Zeus's `ZeusMonitor`.

    ```python
    monitor = llem.EnergyMonitor()
    monitor.begin_window("all")
    monitor.begin_window("prefill")
    ...
    prefill = monitor.end_window("prefill")
    everything = monitor.end_window("all")
    ```

    Each window has its own energy backends and sampler, so windows are independent:
    an inner or overlapping window does not change an outer one's figures.

    Args:
        devices: as for `measure`.
        sample_interval_ms: as for `measure`.
        baseline: as for `measure`; measured once, when the monitor is created.
        energy: as for `measure`.

    """

    def __init__(
        self,
        devices: Devices = None,
        sample_interval_ms: int = SAMPLE_INTERVAL_MS,
        baseline: bool | float = False,
        energy: EnergyChoice = "auto",
    ) -> None:
        self._devices = WindowDevices(devices, sample_interval_ms, baseline, energy)
        sources = self._devices.open_sources()
        try:
            self._devices.baselines(sources)
        finally:
            sources.close()
        self._windows: dict[str, _OpenWindow] = {}

    @property
    def cuda_ordinals(self) -> list[int]:
        """The CUDA devices measured."""
        return list(self._devices.cuda_ordinals)

    def begin_window(self, name: str) -> None:
        """Open the window `name` (synchronising the devices first).

        Raises:
            ValueError: a window of that name is already open.

        """
        if name in self._windows:
            raise ValueError(f"measurement window {name!r} is already open")
        window = _OpenWindow(self._devices, name=name)
        window.begin()
        self._windows[name] = window

    def end_window(self, name: str) -> Measurement:
        """Close the window `name` (synchronising the devices first) and return it.

        Raises:
            ValueError: no window of that name is open.

        """
        window = self._windows.pop(name, None)
        if window is None:
            raise ValueError(f"no measurement window {name!r} is open")
        return window.end()
