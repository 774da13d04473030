"""The power integral of sampled device power, and what it rests on (readings per device).

Computed once per window, from the window's own samples (`core/window.py`): the energy of
a GPU without an energy counter, and the cross-check of one with a counter.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise

from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample


def power_readings_per_device(samples: Sequence[PowerThermalSample]) -> dict[int, int]:
    """Power readings per GPU (NVML index): samples whose `power_w` was read, not ticks.

    A tick yields one sample per device, and a failed or unsupported reading leaves
    `power_w` None; CPU rows carry no power (it comes from the energy backend). So the
    count of ticks overstates what an integral or a cross-check rests on; this is the
    figure a low-sample warning needs. Every GPU that has a sample is listed, with 0
    where none had power.
    """
    counts: dict[int, int] = {}
    for s in samples:
        if s.device_index != CPU_DEVICE_INDEX:
            counts[s.device_index] = counts.get(s.device_index, 0) + (s.power_w is not None)
    return counts


def power_integrals_j(
    samples: Sequence[PowerThermalSample],
    start_s: float | None = None,
    end_s: float | None = None,
) -> dict[int, float | None]:
    """Trapezoidal integral of each GPU's sampled power, in joules, by NVML index.

    Each device's series is clipped to [start_s, end_s] (default: its own first and last
    sample) with the power interpolated linearly at the bounds. CPU rows carry no power
    and are skipped. A device with fewer than two power readings gets None.
    """
    by_device: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for s in samples:
        if s.device_index != CPU_DEVICE_INDEX and s.power_w is not None:
            by_device[s.device_index].append((s.t_s, s.power_w))
    return {
        index: _trapezoid_j(sorted(points), start_s, end_s) for index, points in by_device.items()
    }


def total_integral_j(integrals_j: dict[int, float | None]) -> float | None:
    """The sum over devices of `power_integrals_j`; None without devices or with a gap."""
    if not integrals_j or None in integrals_j.values():
        return None
    return sum(j for j in integrals_j.values() if j is not None)


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
