"""A load run's summary on constructed records, against hand-computed figures."""

from __future__ import annotations

import pytest

from llenergymeasure.config.load import SloConfig
from llenergymeasure.core.load.summary import summarise_load
from llenergymeasure.domain.load import EngineStep, LoadRun, RequestRecord


def record(i: int, planned: float, ttft_s: float) -> RequestRecord:
    arrival = planned + 0.001
    first = arrival + ttft_s
    return RequestRecord(
        request_id=i,
        planned_s=planned,
        arrival_s=arrival,
        scheduled_s=arrival,
        first_token_s=first,
        last_token_s=first + 0.2,
        output_tokens=3,
    )


RUN = LoadRun(
    mode="rate",
    start_monotonic_s=1000.0,
    end_s=1.9,
    requests=[record(0, 0.0, 0.1), record(1, 0.5, 0.1), record(2, 1.0, 0.2), record(3, 1.5, 0.1)],
)
# Flat 100 W over the window: 190 J under the curve, 380 J on the counter.
SAMPLES = [(0.0, 100.0), (1.9, 100.0)]
STEPS = [
    EngineStep(start_s=0.0, end_s=0.1, prefill_tokens={0: 5}),
    EngineStep(start_s=0.5, end_s=0.6, decode_tokens={0: 1, 1: 1}),
]


def test_summary_matches_the_hand_computed_figures() -> None:
    summary = summarise_load(
        RUN,
        energy_j=380.0,
        energy_window=(0.0, 1.9),
        samples=SAMPLES,
        sample_interval_s=0.01,
        max_batch=8,
        slo=SloConfig(ttft_ms=150.0),
        steps=STEPS,
    )
    assert (summary.requests, summary.completed) == (4, 4)
    assert summary.planned_rate_per_s == pytest.approx(2.0)
    assert summary.achieved_rate_per_s == pytest.approx(2.0)
    assert (summary.ttft_p50_ms, summary.ttft_p95_ms) == pytest.approx((100.0, 185.0))
    assert (summary.tpot_p50_ms, summary.tpot_p95_ms) == pytest.approx((100.0, 100.0))
    assert summary.e2e_p95_ms == pytest.approx(385.0)
    assert summary.queueing_delay_p95_ms == pytest.approx(0.0)
    assert summary.dispatch_lag_max_ms == pytest.approx(1.0)
    # First completion at 0.301 s, last arrival at 1.501 s.
    window = summary.steady_window
    assert window.rule == "arrivals_and_completions"
    assert (window.start_s, window.end_s) == pytest.approx((0.301, 1.501))
    assert summary.steady.energy_j == pytest.approx(380.0 * 1.2 / 1.9)
    assert (summary.whole.energy_j, summary.whole.output_tokens) == (380.0, 12.0)
    # Completions at 0.301 (the window's start), 0.801 and 1.401 s; the tokens of
    # requests 1 and 2 (request 0's last two are spread over (0.101, 0.301]).
    assert (summary.steady.requests_completed, summary.steady.output_tokens) == (3, 6.0)
    assert (summary.goodput.good_requests, summary.goodput.good_output_tokens) == (3, 9)
    assert summary.goodput.j_per_good_token == pytest.approx(380.0 / 9)
    assert summary.attributed.prefill_j + summary.attributed.decode_j == pytest.approx(380.0)


def test_unknown_energy_and_no_slo_leave_those_figures_out() -> None:
    summary = summarise_load(
        RUN,
        energy_j=None,
        energy_window=(0.0, 1.9),
        samples=SAMPLES,
        sample_interval_s=0.01,
        max_batch=None,
        steps=STEPS,
    )
    assert (summary.goodput, summary.attributed, summary.whole.energy_j) == (None, None, None)
    assert summary.steady.energy_j is None and summary.steady.output_tokens > 0
