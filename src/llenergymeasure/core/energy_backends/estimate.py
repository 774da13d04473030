"""A labelled CPU energy estimate for machines without an energy counter.

energy_j = full_load_w x busy CPU seconds of the whole host / logical cores, i.e. the
cores the host sees are assumed to draw `full_load_w` when all are busy and nothing when
idle. `full_load_w` is configured, or comes from a table of CPU models' TDP, or from a
per-socket default (`cpu_tdp`). This is a model, not a measurement: results say
`energy_method: estimate`, carry the assumptions and their source, and a warning.
"""

from __future__ import annotations

import psutil

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.core.energy_backends.cpu_tdp import cpu_power_assumption
from llenergymeasure.core.host import cpu_model_name, host_busy_cpu_s
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement


class CpuEstimateBackend(EnergyBackend):
    """Full-load power x utilisation of the whole host (machine-level)."""

    method = "estimate"

    def __init__(self, tdp_w: float | None = None, cpu_model: str | None = None) -> None:
        """Model the host's CPU.

        Args:
            tdp_w: full-load power of all logical cores the host sees
                (`measurement.energy.cpu_tdp_w`); None: from the CPU model.
            cpu_model: the CPU model name to look up; None: `/proc/cpuinfo`'s.

        """
        super().__init__()
        self.device_ids = ["cpu"]
        self.logical_cores = psutil.cpu_count(logical=True) or 1
        power = cpu_power_assumption(
            cpu_model if cpu_model is not None else cpu_model_name(), self.logical_cores, tdp_w
        )
        self.tdp_w = power.full_load_w
        self.tdp_source = power.source
        self.assumptions = [
            f"CPU power at full load {power.explanation}",
            "power proportional to busy CPU time of the whole host (/proc/stat: user + nice "
            "+ system + irq + softirq; guest time is inside user, steal and iowait are not "
            "work), zero at idle",
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
        self._busy_start_s = host_busy_cpu_s()

    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement:
        # /proc/stat counts in 10 ms ticks: on a short window the difference can exceed
        # what the cores could do, which is physically impossible, so it is capped.
        busy_s = max(0.0, host_busy_cpu_s() - self._busy_start_s)
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
            tdp_source=self.tdp_source,
        )
