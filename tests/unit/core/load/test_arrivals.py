"""Arrival schedules: seeded and repeatable, at the requested rate within the stated
statistical tolerance, with the gap distribution each arrival process promises."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from llenergymeasure.config.load import LoadConfig
from llenergymeasure.core.load.arrivals import (
    achieved_rate_per_s,
    arrival_times_s,
    load_schedule_s,
)

# A schedule of n gaps misses its rate by more than 4 standard deviations with
# probability about 6e-5; the seeds below are fixed, so the test is deterministic, but
# a wrong distribution (wrong scale, shape misused as scale) misses by far more.
SIGMAS = 4.0
SEEDS = [0, 1, 7, 42, 12345]


def rate_relative_sd(arrival: str, gaps: int, burstiness: float | None) -> float:
    """The stated tolerance (core/load/arrivals.py): about 1 / sqrt(gaps * k), 0 if constant."""
    if arrival == "constant":
        return 0.0
    return 1.0 / math.sqrt(gaps * (1.0 if arrival == "poisson" else burstiness))


def test_constant_schedule_is_exact() -> None:
    times = arrival_times_s("constant", 4.0, seed=0, num_requests=9)
    assert times == pytest.approx([i / 4.0 for i in range(9)], abs=1e-12)
    assert achieved_rate_per_s(times) == pytest.approx(4.0, rel=1e-12)


@pytest.mark.parametrize(
    ("arrival", "burstiness"), [("poisson", None), ("gamma", 0.5), ("gamma", 4.0)]
)
def test_same_seed_same_times_other_seed_other_times(arrival: str, burstiness: float | None):
    first = arrival_times_s(arrival, 5.0, seed=3, burstiness=burstiness, num_requests=50)
    again = arrival_times_s(arrival, 5.0, seed=3, burstiness=burstiness, num_requests=50)
    other = arrival_times_s(arrival, 5.0, seed=4, burstiness=burstiness, num_requests=50)
    assert first == again
    assert first != other
    assert first[0] == 0.0
    assert all(b >= a for a, b in zip(first, first[1:], strict=False))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("arrival", "burstiness"), [("poisson", None), ("gamma", 0.25), ("gamma", 4.0)]
)
def test_achieved_rate_within_the_stated_tolerance(seed: int, arrival: str, burstiness):
    n = 2000
    times = arrival_times_s(arrival, 10.0, seed=seed, burstiness=burstiness, num_requests=n + 1)
    tolerance = SIGMAS * rate_relative_sd(arrival, n, burstiness)
    assert achieved_rate_per_s(times) == pytest.approx(10.0, rel=tolerance)


@pytest.mark.parametrize(
    ("arrival", "burstiness", "shape"),
    [("poisson", None, 1.0), ("gamma", 0.25, 0.25), ("gamma", 4.0, 4.0)],
)
def test_rate_spread_over_seeds_matches_the_stated_sd(arrival, burstiness, shape) -> None:
    """The stated tolerance is the real spread: 300 schedules of 400 gaps each."""
    n = 400
    errors = [
        achieved_rate_per_s(
            arrival_times_s(arrival, 2.0, seed=s, burstiness=burstiness, num_requests=n + 1)
        )
        / 2.0
        - 1.0
        for s in range(300)
    ]
    # The sd of a sample sd of 300 values is about 4% of it; allow 20%.
    assert statistics.stdev(errors) == pytest.approx(
        rate_relative_sd(arrival, n, burstiness), rel=0.2
    )
    gaps = np.diff(
        arrival_times_s(arrival, 2.0, seed=0, burstiness=burstiness, num_requests=20_001)
    )
    assert gaps.std() / gaps.mean() == pytest.approx(1 / np.sqrt(shape), rel=0.05)


def test_duration_schedule_stops_before_the_duration() -> None:
    times = arrival_times_s("poisson", 50.0, seed=9, duration_s=20.0)
    assert max(times) < 20.0
    assert len(times) == pytest.approx(1000, rel=SIGMAS / np.sqrt(1000))
    constant = arrival_times_s("constant", 2.0, seed=0, duration_s=3.0)
    assert constant == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0, 2.5])


def test_load_section_schedules_use_the_experiment_seed() -> None:
    load = LoadConfig(mode="rate", rate_per_s=3.0, num_requests=20, arrival="gamma", burstiness=2.0)
    assert load_schedule_s(load, seed=5) == arrival_times_s(
        "gamma", 3.0, 5, burstiness=2.0, num_requests=20
    )
    assert load_schedule_s(load, seed=5) != load_schedule_s(load, seed=6)
    assert load_schedule_s(LoadConfig(mode="concurrency", concurrency=2, num_requests=3), 5) is None


def test_seed_42_gives_the_recorded_times() -> None:
    """The same schedule on every install: a change of numpy's streams would show here."""
    assert arrival_times_s("poisson", 1.0, 42, num_requests=4) == pytest.approx(
        [0.0, 2.4042086039659947, 4.740398259790448, 7.125159259664702], rel=1e-12
    )
    assert arrival_times_s("gamma", 1.0, 42, burstiness=0.5, num_requests=4) == pytest.approx(
        [0.0, 1.6090002922630262, 4.169586227907649, 4.187324973617952], rel=1e-12
    )
