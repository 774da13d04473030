"""Attributed energy: a hand-computed split, and parts that add up to the window's energy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llenergymeasure.core.load.attribution import (
    attribute_energy,
    power_integral_j,
    share_energy_j,
)
from llenergymeasure.domain.load import EngineStep

# 100 W flat to 0.5 s, then rising in a straight line to 300 W at 1 s: 150 J under the
# curve, while the counter says 300 J, so every joule of the curve is worth two.
SAMPLES = [(0.0, 100.0), (0.5, 100.0), (1.0, 300.0)]
STEPS = [
    EngineStep(start_s=0.0, end_s=0.2, prefill_tokens={0: 30, 1: 10}),  # owns [0, 0.25): 50 J
    EngineStep(start_s=0.25, end_s=0.45, decode_tokens={0: 1, 1: 1}),  # [0.25, 0.5): 50 J
    EngineStep(start_s=0.5, end_s=0.7, prefill_tokens={2: 3}, decode_tokens={0: 1}),  # 200 J
]


def test_power_integral_is_the_trapezoid_of_the_samples() -> None:
    assert power_integral_j(SAMPLES, 0.0, 1.0) == pytest.approx(150.0)
    assert power_integral_j(SAMPLES, 0.7, 1.0) == pytest.approx(0.3 * (180.0 + 300.0) / 2)
    assert power_integral_j(SAMPLES, -1.0, 0.0) == pytest.approx(100.0)  # held flat outside
    assert power_integral_j([], 2.0, 2.5) == 0.5


def test_power_integral_agrees_with_numpy_trapezoid_on_random_intervals() -> None:
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0.0, 10.0, 200))
    samples = list(zip(times.tolist(), rng.uniform(20.0, 700.0, 200).tolist(), strict=True))
    for a, b in np.sort(rng.uniform(-1.0, 11.0, (50, 2)), axis=1):
        knots = np.concatenate(([a], times[(times > a) & (times < b)], [b]))
        power = np.interp(knots, times, [p for _, p in samples])
        assert power_integral_j(samples, a, b) == pytest.approx(np.trapezoid(power, knots))


def test_the_split_matches_the_hand_computed_answer() -> None:
    result = attribute_energy(300.0, (0.0, 1.0), STEPS, SAMPLES)
    assert result.method == "attributed"
    assert result.prefill_j == pytest.approx(37.5 + 12.5 + 150.0)
    assert result.decode_j == pytest.approx(25.0 + 25.0 + 50.0)
    by_id = {r.request_id: (r.prefill_j, r.decode_j) for r in result.requests}
    assert by_id == {
        0: pytest.approx((37.5, 25.0 + 50.0)),
        1: pytest.approx((12.5, 25.0)),
        2: pytest.approx((150.0, 0.0)),
    }
    # Gaps [0.2, 0.25], [0.45, 0.5] at 100 W, [0.7, 1.0] from 180 W to 300 W; times two.
    assert result.between_steps_j == pytest.approx(2 * (5.0 + 5.0 + 72.0))
    assert result.mixed_steps == 1
    assert any("power sampled every 500 ms" in w for w in result.warnings)


def test_parts_add_up_to_the_window_energy_on_a_long_random_run() -> None:
    rng = np.random.default_rng(1)
    starts = np.cumsum(rng.uniform(0.005, 0.05, 4000))
    steps = []
    for start in starts:
        ids = rng.choice(64, size=rng.integers(1, 16), replace=False).tolist()
        split = rng.integers(0, len(ids) + 1)
        steps.append(
            EngineStep(
                start_s=float(start),
                end_s=float(start + 0.004),
                prefill_tokens={i: int(rng.integers(1, 512)) for i in ids[:split]},
                decode_tokens={i: 1 for i in ids[split:]},
            )
        )
    window = (0.0, float(starts[-1] + 0.01))
    samples = [
        (float(t), float(p))
        for t, p in zip(np.arange(0.0, window[1], 0.1), rng.uniform(50, 400, 2000), strict=False)
    ]
    window_j = 12345.678
    result = attribute_energy(window_j, window, steps, samples)
    assert math.fsum(r.energy_j for r in result.requests) == pytest.approx(window_j, rel=1e-12)
    assert result.prefill_j + result.decode_j == pytest.approx(window_j, rel=1e-12)
    assert 0 < result.between_steps_j < window_j


def test_without_samples_the_energy_follows_time_with_a_warning() -> None:
    result = attribute_energy(100.0, (0.0, 1.0), STEPS, [])
    by_id = {r.request_id: r.energy_j for r in result.requests}
    # Spans of 0.25, 0.25 and 0.5 s: 25, 25 and 50 J.
    assert by_id == pytest.approx({0: 18.75 + 12.5 + 12.5, 1: 6.25 + 12.5, 2: 37.5})
    assert result.warnings == [
        "no power samples (or none above 0 W): each step's energy is in proportion to its time"
    ]


@pytest.mark.parametrize(
    ("steps", "window", "expected"),
    [
        ([], (0.0, 1.0), "no engine steps"),
        (STEPS, (0.5, 0.5), "is empty"),
        (
            [STEPS[0], EngineStep(start_s=0.1, end_s=0.3, decode_tokens={0: 1})],
            (0.0, 1.0),
            "step 1 overlaps",
        ),
        ([EngineStep(start_s=0.2, end_s=0.1, decode_tokens={0: 1})], (0.0, 1.0), "step 0 overlaps"),
        ([EngineStep(start_s=0.0, end_s=0.1, decode_tokens={0: 0})], (0.0, 1.0), "no tokens"),
        (STEPS, (0.0, 0.6), "ends after the energy window"),
        (STEPS, (0.1, 1.0), "step 0 overlaps"),
    ],
)
def test_steps_that_cannot_be_attributed_are_refused(steps, window, expected) -> None:
    with pytest.raises(ValueError, match=expected):
        attribute_energy(10.0, window, steps, SAMPLES)


def test_a_part_of_the_window_gets_its_share_by_the_power_shape() -> None:
    first, second = share_energy_j(300.0, SAMPLES, (0.0, 1.0), [(0.0, 0.5), (0.5, 1.0)])
    assert (first, second) == pytest.approx((100.0, 200.0))
