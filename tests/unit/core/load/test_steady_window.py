"""Steady windows found by each rule on constructed runs, and the figures over them."""

from __future__ import annotations

import pytest

from llenergymeasure.core.load.steady_state import running_counts, steady_window, window_figures
from llenergymeasure.domain.load import RequestRecord


def record(
    i: int,
    arrival: float,
    last: float,
    scheduled: float | None = None,
    out: int = 4,
    token_times: list[float] | None = None,
) -> RequestRecord:
    return RequestRecord(
        request_id=i,
        planned_s=None,
        arrival_s=arrival,
        scheduled_s=scheduled,
        first_token_s=min(last, arrival + 0.05),
        last_token_s=last,
        output_tokens=out,
        token_times_s=token_times or [],
    )


# Five requests queued at 0 for a batch of two: each is admitted when one finishes.
SATURATED = [
    record(0, 0.0, 1.0, scheduled=0.0),
    record(1, 0.0, 1.5, scheduled=0.1),
    record(2, 0.0, 2.2, scheduled=1.0),
    record(3, 0.0, 2.5, scheduled=1.5),
    record(4, 0.0, 3.0, scheduled=2.2),
]
# Requests that arrive, run and finish; at most two in flight.
UNSATURATED = [record(0, 0.0, 0.3), record(1, 0.5, 0.7), record(2, 1.0, 1.4), record(3, 1.5, 1.6)]


def test_running_counts_step_at_each_start_and_end() -> None:
    assert running_counts([(0.0, 1.0), (0.5, 1.0), (1.0, 2.0)]) == [
        (0.0, 1),
        (0.5, 2),
        (1.0, 1),
        (2.0, 0),
    ]


def test_saturated_window_runs_from_a_full_batch_to_the_drain() -> None:
    window = steady_window(SATURATED, max_batch=2, sample_interval_s=0.01)
    assert (window.rule, window.start_s, window.end_s) == ("batch_full", 0.1, 2.5)
    assert window.duration_s == pytest.approx(2.4)
    assert window.warnings == []


def test_without_admission_times_queued_requests_fill_the_batch_with_a_warning() -> None:
    runs = [r.model_copy(update={"scheduled_s": None}) for r in SATURATED]
    window = steady_window(runs, max_batch=2, sample_interval_s=0.01)
    assert (window.rule, window.start_s, window.end_s) == ("batch_full", 0.0, 2.5)
    assert "does not report admissions" in window.warnings[0]


def test_a_batch_that_never_fills_takes_the_in_flight_rule() -> None:
    for max_batch in (None, 4):
        window = steady_window(UNSATURATED, max_batch=max_batch, sample_interval_s=0.01)
        assert (window.rule, window.start_s, window.end_s) == ("arrivals_and_completions", 0.3, 1.5)
        assert window.warnings == []


def test_no_steady_state_when_the_first_completion_follows_the_last_arrival() -> None:
    window = steady_window(
        [record(0, 0.0, 2.0), record(1, 0.5, 2.2)], max_batch=None, sample_interval_s=0.1
    )
    assert (window.start_s, window.end_s, window.duration_s) == (None, None, None)
    assert window.warnings[0].startswith("no steady state")


@pytest.mark.parametrize(
    ("sample_s", "counter_s", "min_trusted_s", "warned"),
    [
        (0.01, None, 0.2, False),
        (0.1, None, 2.0, True),
        (0.01, 0.1, 2.0, True),
        (0.05, 0.04, 1.0, False),
    ],
)
def test_a_window_too_short_for_the_instruments_is_warned(
    sample_s, counter_s, min_trusted_s, warned
) -> None:
    window = steady_window(
        UNSATURATED, max_batch=None, sample_interval_s=sample_s, counter_interval_s=counter_s
    )
    assert window.min_trusted_s == pytest.approx(min_trusted_s)
    assert bool(window.warnings) == warned
    if warned:
        assert "steady window of 1.20 s is shorter than 2.00 s" in window.warnings[0]


def test_window_figures_count_tokens_and_share_the_energy() -> None:
    spread = RequestRecord(
        request_id=0,
        planned_s=None,
        arrival_s=0.0,
        first_token_s=0.0,
        last_token_s=1.0,
        output_tokens=11,
    )
    timed = record(1, 0.3, 1.6, token_times=[0.4, 0.6, 1.2, 1.6])
    samples = [(0.0, 100.0), (1.0, 100.0), (1.0, 300.0), (2.0, 300.0)]
    figures = window_figures([spread, timed], (0.5, 1.5), 800.0, (0.0, 2.0), samples)
    # 10 tokens after the first spread over (0, 1]: half of them in the window; 2 timed ones.
    assert figures.output_tokens == pytest.approx(5.0 + 2.0)
    assert figures.requests_completed == 1
    # 100 W then 300 W: 400 J under the curve, the window holds 50 + 150 of it; x2.
    assert figures.energy_j == pytest.approx(400.0)
    assert figures.tokens_per_s == pytest.approx(7.0)
    assert figures.j_per_token == pytest.approx(400.0 / 7.0)
    whole = window_figures([spread, timed], (0.0, 2.0), 800.0, (0.0, 2.0), samples)
    assert (whole.energy_j, whole.output_tokens, whole.requests_completed) == (800.0, 15.0, 2)
    unknown = window_figures([spread], (0.5, 1.5), None, (0.0, 2.0), samples)
    assert (unknown.energy_j, unknown.j_per_token) == (None, None)
