"""A labelled CPU energy estimate for machines without an energy counter.

energy_j = tdp_w x busy CPU seconds of the whole machine / logical cores, i.e. the
package is assumed to draw its full TDP when every core is busy and nothing when idle.
This is a model, not a measurement: results say `energy_method: estimate`, carry the
assumptions, and a warning.
"""

from __future__ import annotations

import psutil

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement

DEFAULT_TDP_W_PER_CORE = 10.0


def machine_busy_cpu_s() -> float:
    """CPU seconds spent on all cores of the host, excluding idle and I/O wait."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return float(sum(times)) - idle


class CpuEstimateBackend(EnergyBackend):
    """TDP share x utilisation of the whole host (machine-level)."""

    method = "estimate"

    def __init__(self, tdp_w: float | None = None) -> None:
        super().__init__()
        self.device_ids = ["cpu"]
        self.logical_cores = psutil.cpu_count(logical=True) or 1
        self.tdp_w = tdp_w if tdp_w is not None else DEFAULT_TDP_W_PER_CORE * self.logical_cores
        source = (
            "configured"
            if tdp_w is not None
            else (f"assumed {DEFAULT_TDP_W_PER_CORE:g} W per logical core")
        )
        self.assumptions = [
            f"CPU package power at full load {self.tdp_w:g} W ({source})",
            "power proportional to busy CPU time of the whole host (/proc/stat), zero at idle",
        ]
        self._busy_start_s = 0.0

    @property
    def baseline_source(self) -> str:
        """The idle baseline is the model's too (zero at idle, plus other work on the host)."""
        return "model"

    @property
    def cache_key(self) -> str:
        """The modelled idle power scales with the assumed TDP, so the TDP is part of it."""
        return f"{super().cache_key}|tdp={self.tdp_w:g}"

    def _begin(self) -> None:
        self._busy_start_s = machine_busy_cpu_s()

    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement:
        # /proc/stat counts in 10 ms ticks: on a short window the difference can exceed
        # what the cores could do, which is physically impossible, so it is capped.
        busy_s = max(0.0, machine_busy_cpu_s() - self._busy_start_s)
        busy_s = min(busy_s, self.logical_cores * duration_s)
        energy_j = self.tdp_w * busy_s / self.logical_cores
        return EnergyMeasurement(
            method="estimate",
            host=self.host,
            devices=[DeviceEnergy(device_id="cpu", kind="cpu", scope="machine", energy_j=energy_j)],
            window_start_unix_s=window_start_unix_s,
            window_end_unix_s=window_end_unix_s,
            duration_s=duration_s,
            assumptions=self.assumptions,
        )
