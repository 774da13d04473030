"""Energy per phase and per request, attributed from the engine's steps.

The window's energy comes from the counter (or whichever backend measured it); the
power samples only give its shape in time. The rule:

1. Power between samples is the straight line joining them (held flat before the first
   and after the last), the curve whose trapezoidal integral the sampler reports.
2. The steps tile the window: step `k` owns the time from its start to the start of the
   next step (the first also owns the time before it, the last the time to the window's
   end), so time between steps (scheduling, sampling, waiting for requests) is charged to
   the step before it; `between_steps_j` says how much that was.
3. Step `k` gets `window_j * w_k / sum(w)`, with `w_k` the power curve's integral over its
   span, so the steps' energies add up to the window's energy.
4. Within a step, energy is shared over its tokens, prefill and decode alike: a request
   gets the step's energy times its share of the step's tokens, in the phase of those
   tokens. A step holding both phases (chunked prefill) is split that way too, an
   assumption counted in `mixed_steps`.

Without power samples (or with none above 0 W) the shape is flat: energy in proportion to
time, with a warning.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from statistics import median

import numpy as np

from llenergymeasure.domain.load import AttributedEnergy, EngineStep, RequestEnergy

PowerSample = tuple[float, float]


class PowerCurve:
    """The power curve of a series of samples, and its integral between any two times.

    Straight lines between samples, flat before the first and after the last; without
    samples, a flat 1 W (energy in proportion to time).
    """

    def __init__(self, samples: Sequence[PowerSample]) -> None:
        """Keep the samples, `(t_s, power_w)` in time order, and their running integral."""
        self._t = np.array([t for t, _ in samples], dtype=float)
        self._p = np.array([p for _, p in samples], dtype=float)
        dt = np.diff(self._t)
        self._cumulative_j = np.concatenate(
            ([0.0], np.cumsum(dt * (self._p[1:] + self._p[:-1]) / 2))
        )
        slopes = np.divide(np.diff(self._p), dt, out=np.zeros_like(dt), where=dt > 0)
        self._slope = np.append(slopes, 0.0)

    def cumulative_j(self, times_s: np.ndarray) -> np.ndarray:
        """Integral from the first sample to each time (negative before it)."""
        if not len(self._t):
            return times_s.astype(float)
        k = np.clip(np.searchsorted(self._t, times_s, side="right") - 1, 0, len(self._t) - 1)
        dx = times_s - self._t[k]
        slope = np.where(dx > 0, self._slope[k], 0.0)
        return self._cumulative_j[k] + self._p[k] * dx + 0.5 * slope * dx**2

    def integrals_j(self, intervals: Sequence[tuple[float, float]]) -> np.ndarray:
        """The integral over each `(start_s, end_s)`; 0 for an empty one."""
        bounds = np.array(intervals, dtype=float).reshape(-1, 2)
        values = self.cumulative_j(bounds[:, 1]) - self.cumulative_j(bounds[:, 0])
        return np.where(bounds[:, 1] > bounds[:, 0], values, 0.0)


def power_integral_j(samples: Sequence[PowerSample], start_s: float, end_s: float) -> float:
    """Integral of the interpolated power curve over `[start_s, end_s]`.

    Returns:
        Joules under the curve; the interval's length in seconds (1 W) without samples.

    """
    return float(PowerCurve(samples).integrals_j([(start_s, end_s)])[0])


def share_energy_j(
    total_j: float,
    samples: Sequence[PowerSample],
    window: tuple[float, float],
    intervals: Sequence[tuple[float, float]],
) -> list[float]:
    """The part of a window's energy in each interval, by the power curve's shape.

    Args:
        total_j: the window's energy.
        samples: `(t_s, power_w)` in time order; empty: a flat shape.
        window: `(start_s, end_s)` the total covers.
        intervals: `(start_s, end_s)` inside the window.

    """
    curve = PowerCurve(samples)
    whole = float(curve.integrals_j([window])[0])
    if whole <= 0:
        curve, whole = PowerCurve(()), window[1] - window[0]
    return [total_j * float(part) / whole for part in curve.integrals_j(intervals)]


def attribute_energy(
    window_j: float,
    window: tuple[float, float],
    steps: Sequence[EngineStep],
    samples: Sequence[PowerSample],
) -> AttributedEnergy:
    """Split a window's energy into prefill and decode, and over the requests served.

    Args:
        window_j: the window's energy, from the counter.
        window: `(start_s, end_s)` of the energy window, on the steps' clock.
        steps: the engine's steps inside the window, in time order.
        samples: `(t_s, power_w)` of the device the energy is for, same clock.

    Raises:
        ValueError: no steps, steps out of order, overlapping, outside the window, or
            a step without tokens.

    """
    _check_steps(steps, window)
    curve = PowerCurve(samples)
    if curve.integrals_j([window])[0] <= 0:
        samples, curve = (), PowerCurve(())
    warnings = _shape_warnings(steps, samples)
    starts = [s.start_s for s in steps]
    spans = list(zip([window[0], *starts[1:]], [*starts[1:], window[1]], strict=True))
    weights = curve.integrals_j(spans).tolist()
    whole = math.fsum(weights)
    gaps = [(window[0], steps[0].start_s)]
    gaps += [(s.end_s, b) for s, (_, b) in zip(steps, spans, strict=True)]
    between_j = window_j * math.fsum(curve.integrals_j(gaps).tolist()) / whole
    prefill: dict[int, float] = defaultdict(float)
    decode: dict[int, float] = defaultdict(float)
    for step, weight in zip(steps, weights, strict=True):
        step_j = window_j * weight / whole
        tokens = sum(step.prefill_tokens.values()) + sum(step.decode_tokens.values())
        for request_id, n in step.prefill_tokens.items():
            prefill[request_id] += step_j * n / tokens
        for request_id, n in step.decode_tokens.items():
            decode[request_id] += step_j * n / tokens
    ids = sorted(prefill.keys() | decode.keys())
    return AttributedEnergy(
        window_j=window_j,
        prefill_j=math.fsum(prefill.values()),
        decode_j=math.fsum(decode.values()),
        between_steps_j=between_j,
        mixed_steps=sum(
            1 for s in steps if any(s.prefill_tokens.values()) and any(s.decode_tokens.values())
        ),
        requests=[
            RequestEnergy(request_id=i, prefill_j=prefill.get(i, 0.0), decode_j=decode.get(i, 0.0))
            for i in ids
        ],
        warnings=warnings,
    )


def _check_steps(steps: Sequence[EngineStep], window: tuple[float, float]) -> None:
    if not steps:
        raise ValueError("no engine steps to attribute the energy to")
    if window[1] <= window[0]:
        raise ValueError(f"the energy window {window} is empty")
    previous_end = window[0]
    for k, step in enumerate(steps):
        if step.start_s < previous_end or step.end_s < step.start_s:
            raise ValueError(f"step {k} overlaps the one before it or ends before it starts")
        if not any(step.prefill_tokens.values()) and not any(step.decode_tokens.values()):
            raise ValueError(f"step {k} processed no tokens")
        if any(n < 0 for n in [*step.prefill_tokens.values(), *step.decode_tokens.values()]):
            raise ValueError(f"step {k} has a negative token count")
        previous_end = step.end_s
    if previous_end > window[1]:
        raise ValueError("the last step ends after the energy window")


def _shape_warnings(steps: Sequence[EngineStep], samples: Sequence[PowerSample]) -> list[str]:
    if not samples:
        return [
            "no power samples (or none above 0 W): each step's energy is in proportion to its time"
        ]
    if len(samples) < 2:
        return []
    interval_s = median(b[0] - a[0] for a, b in zip(samples, samples[1:], strict=False))
    step_s = median(s.end_s - s.start_s for s in steps)
    if step_s >= interval_s:
        return []
    return [
        f"power sampled every {interval_s * 1000:.0f} ms and steps last {step_s * 1000:.1f} ms: "
        "a step's energy follows the power curve between samples, not the step's own power"
    ]
