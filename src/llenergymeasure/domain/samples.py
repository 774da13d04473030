"""One reading of one device by the sampler: what the hardware layer produces, the rest reads."""

from __future__ import annotations

from dataclasses import dataclass

CPU_DEVICE_INDEX = -1


@dataclass(frozen=True, slots=True)
class PowerThermalSample:
    """One reading of one device at `t_s` (seconds, `time.monotonic`).

    GPU rows carry the NVML index of the physical GPU; the host row has index -1
    (`CPU_DEVICE_INDEX`), no power, the process's RSS as `memory_used_mb` and the host's
    memory as `memory_total_mb`. A field that could not be read is None.
    """

    t_s: float
    device_index: int
    power_w: float | None = None
    temperature_c: float | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    sm_utilisation_pct: float | None = None
    throttle_reasons: int | None = None
    cpu_util_pct: float | None = None
