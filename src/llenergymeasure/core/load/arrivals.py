"""Arrival schedules: when each request of a rate or trace load is due.

Times are seconds from the start of the run; the first request is due at 0 and request
`i` after `i` gaps. The gaps are constant (`1 / rate`), exponential (Poisson arrivals)
or gamma with shape `k = burstiness` and mean `1 / rate` (coefficient of variation
`1 / sqrt(k)`: `k = 1` is Poisson, `k < 1` burstier). Random gaps come from numpy's
PCG64 generator seeded with the experiment's seed, so a schedule is the same on every
run with the same numpy.

Over `n` gaps the achieved rate `n / (t_last - t_first)` has a relative standard
deviation of about `1 / sqrt(n k)` (the sum of `n` gamma gaps has shape `n k`); a
constant schedule hits the rate exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from llenergymeasure.config.load import LoadConfig
from llenergymeasure.core.load.trace import read_trace
from llenergymeasure.errors import ConfigError

Arrival = Literal["constant", "poisson", "gamma"]


def arrival_times_s(
    arrival: Arrival,
    rate_per_s: float,
    seed: int,
    *,
    burstiness: float | None = None,
    num_requests: int | None = None,
    duration_s: float | None = None,
) -> list[float]:
    """The due time of each request, from 0.

    Args:
        arrival: how the gaps between requests are drawn.
        rate_per_s: requests per second (the mean rate for random gaps).
        seed: seeds the generator.
        burstiness: the gamma shape (arrival gamma only).
        num_requests: how many requests; or
        duration_s: every request due before this time.

    Raises:
        ValueError: neither or both of num_requests and duration_s, or a gamma schedule
            without burstiness.

    """
    if (num_requests is None) == (duration_s is None):
        raise ValueError("give num_requests or duration_s")
    if arrival == "gamma" and burstiness is None:
        raise ValueError("a gamma schedule needs burstiness")
    rng = np.random.default_rng(seed)
    if num_requests is not None:
        gaps = _gaps(arrival, rate_per_s, burstiness, rng, num_requests - 1)
        return [0.0, *np.cumsum(gaps).tolist()]
    times = [0.0]
    chunk = max(16, math.ceil(1.25 * rate_per_s * duration_s))
    while times[-1] < duration_s:
        gaps = _gaps(arrival, rate_per_s, burstiness, rng, chunk)
        times.extend((times[-1] + np.cumsum(gaps)).tolist())
    return [t for t in times if t < duration_s]


def _gaps(
    arrival: Arrival,
    rate_per_s: float,
    burstiness: float | None,
    rng: np.random.Generator,
    count: int,
) -> np.ndarray:
    mean_s = 1.0 / rate_per_s
    if arrival == "constant":
        return np.full(count, mean_s)
    if arrival == "poisson":
        return rng.exponential(mean_s, count)
    return rng.gamma(burstiness, mean_s / burstiness, count)


def achieved_rate_per_s(times_s: Sequence[float]) -> float | None:
    """Gaps per second between the first and the last arrival; None for fewer than 2."""
    if len(times_s) < 2 or times_s[-1] <= times_s[0]:
        return None
    return (len(times_s) - 1) / (times_s[-1] - times_s[0])


def load_schedule_s(load: LoadConfig, seed: int) -> list[float] | None:
    """The due times of a `load:` section: its rate schedule or its trace (cut at duration).

    Returns:
        None for offline and concurrency loads, whose requests are due when a slot frees.

    Raises:
        ConfigError: the trace file is missing or malformed (`file:line`).

    """
    if load.mode == "rate":
        return arrival_times_s(
            load.arrival,
            load.rate_per_s,
            seed,
            burstiness=load.burstiness,
            num_requests=load.num_requests,
            duration_s=load.duration_s,
        )
    if load.mode == "trace":
        times = read_trace(load.trace)
        if load.duration_s is None:
            return times
        kept = [t for t in times if t < load.duration_s]
        if not kept:
            raise ConfigError(
                f"load.duration_s: no arrival of {load.trace} comes before {load.duration_s:g} s"
            )
        return kept
    return None
