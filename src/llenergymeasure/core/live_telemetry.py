"""Live telemetry of an open measurement window: power, energy so far, output tokens.

About once a second a thread reads the window's new sampler samples and reports a
`Telemetry`: per device its latest power and its energy so far, and the output tokens of
the requests finished so far. It is a view for monitoring (`llem run --metrics-port`),
not a measurement of the result:
- a GPU's power is the sampler's NVML reading (method `nvml`); the CPU's is the CPU
  estimate's model, full-load power x host utilisation (method `estimate`), where the
  host's CPU source is that estimate, and absent otherwise (RAPL is read by its backend,
  at the end of the window);
- energy so far is the trapezoidal integral of those power readings since the window
  opened (method `power_integral`); the result's energy comes from the energy backends
  (counters, or the estimate) when the window closes.

A report that fails is logged once and never ends the run. The last report, sent when
the window has closed, carries the energies and no power: nothing is measured any more.
Output tokens are counted by the engine as requests finish (`Engine.run`).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.window import MeasurementWindow
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample
from llenergymeasure.log import logger

TELEMETRY_INTERVAL_S = 1.0
ENERGY_METHOD = "power_integral"


@dataclass(frozen=True)
class DeviceTelemetry:
    """One device's live figures.

    `device` is `gpu<NVML index>` or `cpu`; `component` is `gpu` or `cpu`. `power_w` is
    None before the first reading, after a failed one, and once the window has closed.
    `energy_j` is the integral of the power readings so far (0 after the first reading).
    """

    device: str
    component: str
    power_w: float | None
    power_method: str
    energy_j: float
    energy_method: str = ENERGY_METHOD


@dataclass(frozen=True)
class Telemetry:
    """One process's live figures: its host, output tokens so far and devices.

    `output_tokens` is None until the engine has counted any (an engine that does not
    count them leaves it None).
    """

    host: str
    output_tokens: int | None
    devices: tuple[DeviceTelemetry, ...] = ()


TelemetryFn = Callable[[Telemetry], None]


class _DeviceIntegral:
    """A device's latest power and the trapezoidal integral of its readings so far."""

    def __init__(self, component: str, method: str) -> None:
        self.component = component
        self.method = method
        self.power_w: float | None = None
        self.energy_j = 0.0
        self._last: tuple[float, float] | None = None

    def add(self, t_s: float, power_w: float | None) -> None:
        self.power_w = power_w
        if power_w is None:
            return
        if self._last is not None and t_s > self._last[0]:
            t0_s, p0_w = self._last
            self.energy_j += (t_s - t0_s) * (p0_w + power_w) / 2
        self._last = (t_s, power_w)


class LiveTelemetry:
    """Reports a window's live figures every `interval_s` from a daemon thread.

    Args:
        window: the window to read; the thread may start before the window opens.
        report: receives each `Telemetry` (on the telemetry thread).
        cpu_full_load_w: the CPU estimate's full-load power of the host's cores (W);
            None: no live CPU power.
        interval_s: seconds between reports.

    """

    def __init__(
        self,
        window: MeasurementWindow,
        report: TelemetryFn,
        cpu_full_load_w: float | None,
        interval_s: float = TELEMETRY_INTERVAL_S,
    ) -> None:
        self.window = window
        self.report = report
        self.cpu_full_load_w = cpu_full_load_w
        self.interval_s = interval_s
        self.host = socket.gethostname()
        self._output_tokens: int | None = None
        self._seen = 0
        self._devices: dict[str, _DeviceIntegral] = {}
        self._failed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_output_tokens(self, count: int) -> None:
        """The output tokens of the requests finished so far."""
        self._output_tokens = count

    def start(self) -> None:
        """Start reporting."""
        self._thread = threading.Thread(target=self._run, name="llem-telemetry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, then send the last report (energies, no power)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._send(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._send(final=False)

    def _send(self, final: bool) -> None:
        try:
            new = self.window.samples_since(self._seen)
            self._seen += len(new)
            for sample in new:
                self._add(sample)
            self.report(self._telemetry(final))
        except Exception as exc:  # noqa: BLE001 - telemetry must never end the run
            if not self._failed:
                logger.warning(f"live telemetry failed, reports skipped: {exc}")
            self._failed = True

    def _add(self, sample: PowerThermalSample) -> None:
        if sample.device_index != CPU_DEVICE_INDEX:
            self._device(f"gpu{sample.device_index}", "gpu", "nvml").add(sample.t_s, sample.power_w)
        elif self.cpu_full_load_w is not None:
            util = sample.cpu_util_pct
            power_w = None if util is None else self.cpu_full_load_w * util / 100
            self._device("cpu", "cpu", "estimate").add(sample.t_s, power_w)

    def _device(self, name: str, component: str, method: str) -> _DeviceIntegral:
        if name not in self._devices:
            self._devices[name] = _DeviceIntegral(component, method)
        return self._devices[name]

    def _telemetry(self, final: bool) -> Telemetry:
        devices = tuple(
            DeviceTelemetry(
                device=name,
                component=d.component,
                power_w=None if final else d.power_w,
                power_method=d.method,
                energy_j=d.energy_j,
            )
            for name, d in self._devices.items()
        )
        return Telemetry(self.host, self._output_tokens, devices)


def cpu_estimate_full_load_w(backends: Sequence[EnergyBackend]) -> float | None:
    """The CPU estimate's full-load power (W) where it is the host's CPU source; else None."""
    return next((b.tdp_w for b in backends if isinstance(b, CpuEstimateBackend)), None)


@contextmanager
def live_telemetry(
    window: MeasurementWindow, report: TelemetryFn | None, backends: Sequence[EnergyBackend]
) -> Iterator[LiveTelemetry | None]:
    """Report the window's live figures inside the block; None (nothing runs) without `report`."""
    if report is None:
        yield None
        return
    live = LiveTelemetry(window, report, cpu_estimate_full_load_w(backends))
    live.start()
    try:
        yield live
    finally:
        live.stop()
