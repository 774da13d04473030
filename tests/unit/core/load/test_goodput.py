"""Goodput on a constructed set of requests against a hand-computed answer.

Times are binary fractions, so the latencies on the SLO's boundary are exact.
"""

from __future__ import annotations

import pytest

from llenergymeasure.config.load import SloConfig
from llenergymeasure.core.load.goodput import goodput, meets_slo
from llenergymeasure.domain.load import RequestRecord


def record(
    request_id: int,
    arrival: float,
    first: float | None,
    last: float | None,
    out: int,
    error: str | None = None,
) -> RequestRecord:
    return RequestRecord(
        request_id=request_id,
        planned_s=arrival,
        arrival_s=arrival,
        first_token_s=first,
        last_token_s=last,
        output_tokens=out,
        error=error,
    )


# request: TTFT ms, TPOT ms, tokens
RECORDS = [
    record(0, 0.0, 0.0625, 0.203125, 10),  # 62.5, 15.625, 10: good
    record(1, 0.125, 0.375, 0.5, 20),  # 250 (late), 6.58, 20
    record(2, 0.25, 0.3125, 0.5625, 5),  # 62.5, 62.5 (slow), 5
    record(3, 0.375, 0.4375, 0.4375, 1),  # 62.5, none (one token), 1: good
    record(4, 0.5, None, None, 0, error="RuntimeError: engine stopped"),  # failed
    record(5, 0.5, 0.625, 0.75, 5),  # 125, 31.25: both on the boundary, good
]
SLO = SloConfig(ttft_ms=125.0, tpot_ms=31.25)


def test_latencies_derived_from_a_record() -> None:
    r = RECORDS[2]
    assert (r.ttft_ms, r.tpot_ms, r.e2e_ms) == (62.5, 62.5, 312.5)
    assert RECORDS[3].tpot_ms is None
    assert RECORDS[4].ttft_ms is None and not RECORDS[4].completed
    queued = RequestRecord(
        request_id=9,
        planned_s=1.0,
        arrival_s=1.001,
        scheduled_s=1.25,
        first_token_s=1.5,
        last_token_s=1.75,
        output_tokens=3,
        token_times_s=[1.5, 1.5625, 1.75],
    )
    assert queued.queueing_delay_ms == pytest.approx(249.0)
    assert queued.dispatch_lag_ms == pytest.approx(1.0)
    assert queued.itl_ms == [62.5, 187.5]


def test_goodput_matches_the_hand_computed_answer() -> None:
    result = goodput(RECORDS, SLO, energy_j=82.0)
    assert [meets_slo(r, SLO) for r in RECORDS] == [True, False, False, True, False, True]
    assert (result.requests, result.good_requests) == (6, 3)
    assert (result.output_tokens, result.good_output_tokens) == (41, 16)
    assert result.request_share == 0.5
    assert result.token_share == 16 / 41
    assert result.j_per_good_token == 82.0 / 16


@pytest.mark.parametrize(
    ("slo", "good", "good_tokens"),
    [
        (SloConfig(ttft_ms=125.0), 4, 21),  # 0, 2, 3, 5
        (SloConfig(tpot_ms=31.25), 4, 36),  # 0, 1, 3, 5
        (SloConfig(ttft_ms=124.0, tpot_ms=31.0), 2, 11),  # 0, 3: 5 misses both by a hair
        (SloConfig(), 5, 41),  # every completed request
    ],
)
def test_each_objective_is_checked_alone(slo: SloConfig, good: int, good_tokens: int) -> None:
    result = goodput(RECORDS, slo, energy_j=None)
    assert (result.good_requests, result.good_output_tokens) == (good, good_tokens)
    assert result.j_per_good_token is None


def test_no_good_tokens_has_no_energy_per_good_token() -> None:
    result = goodput(RECORDS, SloConfig(ttft_ms=1.0), energy_j=82.0)
    assert (result.good_requests, result.j_per_good_token, result.request_share) == (0, None, 0.0)
    empty = goodput([], SLO, energy_j=1.0)
    assert (empty.request_share, empty.token_share) == (None, None)
