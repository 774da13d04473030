"""The figures that `llem results compare` tabulates and `llem plot campaign` draws.

Their names are the aggregated result's fields (or, for `tokens_per_joule`, a ratio of
two of them); this table is the one list of them, read by the comparison, its CSV, the
table's columns, the plots and the CLI help. It imports nothing heavy, so the CLI can
build its help from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llenergymeasure.domain.experiment import AggregatedResult


@dataclass(frozen=True)
class Metric:
    """A figure of an experiment, how it is labelled and where it is read.

    Attributes:
        label: the axis label (`energy / output token`).
        unit: its unit (`J/token`).
        column: the comparison table's short header (`energy`).
        read: reads it from an aggregated result; None where it was not measured.

    """

    label: str
    unit: str
    column: str
    read: Callable[[AggregatedResult], float | None]


def _tokens_per_joule(result: AggregatedResult) -> float | None:
    energy = result.energy_breakdown
    if energy is None or not energy.raw_j:
        return None
    return result.output_tokens / energy.raw_j


def _latency(name: str) -> Callable[[AggregatedResult], float | None]:
    return lambda r: getattr(r.latency, name) if r.latency is not None else None


def _goodput_token_share(result: AggregatedResult) -> float | None:
    """Share of output tokens from requests that met `load.slo`; None without a load SLO."""
    good = result.load.goodput if result.load is not None else None
    if good is None or not good.output_tokens:
        return None
    return good.good_output_tokens / good.output_tokens


def _phase(name: str) -> Callable[[AggregatedResult], float | None]:
    """A figure of the prefill-pass subtraction; None without one."""
    return lambda r: getattr(r.phase_subtraction, name) if r.phase_subtraction else None


METRICS: dict[str, Metric] = {
    "energy_per_output_token_j": Metric(
        "energy / output token", "J/token", "energy", lambda r: r.energy_per_output_token_j
    ),
    "total_tokens_per_second": Metric(
        "throughput", "tok/s", "throughput", lambda r: r.total_tokens_per_second
    ),
    "tokens_per_joule": Metric("output tokens / joule", "tok/J", "efficiency", _tokens_per_joule),
    "padding_share": Metric(
        "padded prompt positions / prompt tokens",
        "ratio",
        "padding",
        lambda r: r.padding.padding_share if r.padding is not None else None,
    ),
    "ttft_p50_ms": Metric("TTFT p50", "ms", "TTFT p50", _latency("ttft_p50_ms")),
    "ttft_p95_ms": Metric("TTFT p95", "ms", "TTFT p95", _latency("ttft_p95_ms")),
    "itl_p50_ms": Metric("ITL p50", "ms", "ITL p50", _latency("itl_p50_ms")),
    "itl_p95_ms": Metric("ITL p95", "ms", "ITL p95", _latency("itl_p95_ms")),
    "goodput_token_share": Metric(
        "goodput (share of tokens)", "fraction", "goodput", _goodput_token_share
    ),
    "prefill_j_per_token": Metric(
        "prefill energy / prompt token (subtraction)",
        "J/token",
        "prefill",
        _phase("prefill_j_per_token"),
    ),
    "decode_j_per_token": Metric(
        "decode energy / decode token (subtraction)",
        "J/token",
        "decode",
        _phase("decode_j_per_token"),
    ),
}
# The metric rows are ranked by ("x best") and plotted by default: energy is what llem is for.
RANKING_METRIC = "energy_per_output_token_j"
