"""Goodput: the share of requests and of tokens that met the latency SLOs.

A request is good when it completed (ran without error and emitted a token), its TTFT
(arrival to first token, queueing included) is at most `slo.ttft_ms`, and its TPOT
(mean gap after the first token) at most `slo.tpot_ms`. An SLO left unset is not
checked; a request with one output token has no TPOT and passes that check. The energy
per good token charges all the energy to the good tokens: serving the bad ones cost
energy too.
"""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.config.load import SloConfig
from llenergymeasure.domain.load import Goodput, RequestRecord


def meets_slo(record: RequestRecord, slo: SloConfig) -> bool:
    """The request completed within both latency objectives."""
    if not record.completed:
        return False
    ttft_ms, tpot_ms = record.ttft_ms, record.tpot_ms
    if slo.ttft_ms is not None and (ttft_ms is None or ttft_ms > slo.ttft_ms):
        return False
    return slo.tpot_ms is None or tpot_ms is None or tpot_ms <= slo.tpot_ms


def goodput(records: Sequence[RequestRecord], slo: SloConfig, energy_j: float | None) -> Goodput:
    """Counts of good requests and their output tokens, with the energy they are charged.

    Args:
        records: the requests of the interval (failed ones included: they count as bad).
        slo: the latency objectives.
        energy_j: the interval's energy; None when unknown.

    """
    good = [r for r in records if meets_slo(r, slo)]
    return Goodput(
        ttft_slo_ms=slo.ttft_ms,
        tpot_slo_ms=slo.tpot_ms,
        requests=len(records),
        good_requests=len(good),
        output_tokens=sum(r.output_tokens for r in records),
        good_output_tokens=sum(r.output_tokens for r in good),
        energy_j=energy_j,
    )
