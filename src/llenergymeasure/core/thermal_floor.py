"""The thermal floor: the wait between warmup and the energy window.

`sleep` waits a fixed time. `stable_temperature` polls every GPU's temperature once a
second until, for each GPU, the range (max - min) of its readings over the last
`stable_for_s` is within `tolerance_c`, or `timeout_s` passes (then a
`thermal_floor_timeout` warning). Without a GPU temperature (the CPU, or a GPU whose
sensor cannot be read) `stable_temperature` waits nothing and warns
(`thermal_floor_unavailable`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from llenergymeasure.config.measurement import ThermalFloorConfig
from llenergymeasure.defaults import GPU_THERMAL_FLOOR_S
from llenergymeasure.domain.metrics import MeasurementWarning

POLL_S = 1.0

ProgressFn = Callable[[str, int, int], None]
TemperatureReader = Callable[[], Sequence[float | None]]


@dataclass(frozen=True)
class ThermalFloorOutcome:
    """What the floor did: its mode, the seconds waited, and a warning where it fell short."""

    mode: Literal["sleep", "stable_temperature"]
    waited_s: float
    stable: bool | None
    warning: MeasurementWarning | None = None

    def warmup_fields(self) -> dict[str, Any]:
        """The `WarmupResult` fields that record the floor."""
        return {
            "thermal_floor_s": self.waited_s,
            "thermal_floor_mode": self.mode,
            "thermal_floor_stable": self.stable,
        }


def apply_thermal_floor(
    config: ThermalFloorConfig,
    read_temperatures_c: TemperatureReader | None,
    on_gpu: bool,
    progress: ProgressFn | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ThermalFloorOutcome:
    """Wait as `config` says.

    Args:
        config: the `measurement.thermal_floor` section.
        read_temperatures_c: reads every GPU's temperature in C (None for one that could
            not be read); None where the process has no GPU temperature source.
        on_gpu: the process runs on a GPU (default sleep: `GPU_THERMAL_FLOOR_S`, else 0).
        progress: called as ``progress("thermal_floor", done_s, total_s)``.
        clock: monotonic seconds.
        sleep: waits the given seconds.

    Returns:
        The mode, the seconds waited and a warning where the floor could not be met.

    """
    if config.mode == "sleep":
        seconds = config.seconds
        if seconds is None:
            seconds = GPU_THERMAL_FLOOR_S if on_gpu else 0.0
        _sleep_for(seconds, progress, clock, sleep)
        return ThermalFloorOutcome("sleep", seconds, None)
    if read_temperatures_c is None:
        return ThermalFloorOutcome("stable_temperature", 0.0, None, _unavailable())
    return _wait_until_stable(config, read_temperatures_c, progress, clock, sleep)


def _sleep_for(
    seconds: float,
    progress: ProgressFn | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> None:
    end = clock() + seconds
    total = int(seconds)
    while (left := end - clock()) > 0:
        if progress is not None:
            progress("thermal_floor", total - int(left), total)
        sleep(min(POLL_S, left))


def _wait_until_stable(
    config: ThermalFloorConfig,
    read_temperatures_c: TemperatureReader,
    progress: ProgressFn | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> ThermalFloorOutcome:
    start = clock()
    history: list[tuple[float, Sequence[float | None]]] = []
    spread = None
    while True:
        now = clock() - start
        history.append((now, read_temperatures_c()))
        if not any(t is not None for _, temps in history for t in temps):
            return ThermalFloorOutcome("stable_temperature", now, None, _unavailable())
        if now >= config.stable_for_s:
            spread = _largest_spread_c(history, now - config.stable_for_s)
            if spread is not None and spread <= config.tolerance_c:
                return ThermalFloorOutcome("stable_temperature", now, True)
        if now >= config.timeout_s:
            return ThermalFloorOutcome("stable_temperature", now, False, _timeout(config, spread))
        if progress is not None:
            progress("thermal_floor", int(now), int(config.timeout_s))
        sleep(POLL_S)


def _largest_spread_c(
    history: list[tuple[float, Sequence[float | None]]], since_s: float
) -> float | None:
    """The largest max - min of any GPU since `since_s`; None where a GPU read nothing."""
    recent = [temps for t_s, temps in history if t_s >= since_s]
    spreads = []
    for device in range(len(recent[0])):
        values = [temps[device] for temps in recent if temps[device] is not None]
        if not values:
            return None
        spreads.append(max(values) - min(values))
    return max(spreads)


def _timeout(config: ThermalFloorConfig, spread_c: float | None) -> MeasurementWarning:
    seen = f"{spread_c:.1f} C" if spread_c is not None else "unknown"
    return MeasurementWarning(
        code="thermal_floor_timeout",
        message=f"the GPU temperature did not settle within {config.tolerance_c:g} C over "
        f"{config.stable_for_s:g} s before the {config.timeout_s:g} s timeout (last range "
        f"{seen}); the window started anyway",
        remediation="raise measurement.thermal_floor.timeout_s or tolerance_c, or check "
        "the cooling and what else runs on the GPU",
    )


def _unavailable() -> MeasurementWarning:
    return MeasurementWarning(
        code="thermal_floor_unavailable",
        message="thermal_floor mode stable_temperature could not be applied: no GPU "
        "temperature can be read here; the window started without waiting",
        remediation="use measurement.thermal_floor.mode: sleep, or run on a GPU whose "
        "temperature NVML reports",
    )
