"""The steady part of a load run, and energy and throughput over an interval of it.

Two rules, the first that applies:

- `batch_full` (ML.ENERGY's rule at saturation): from the moment the engine's running
  batch first holds `max_batch` requests to the moment it last falls below that, when
  the queue has run dry and the batch starts draining. A request runs from its
  admission (`scheduled_s`; its arrival where the engine does not report admissions,
  with a warning) to its last token.
- `arrivals_and_completions` (a load below saturation): from the first completion to
  the last arrival. Before the first completion the requests in flight only grow (the
  ramp); after the last arrival they only shrink (the drain); in between requests
  arrive and complete, so the number in flight hovers around its steady level.

A window is trusted when each of its edges moves its energy by at most
`EDGE_TOLERANCE`: each edge is uncertain by up to one sampler (or counter) interval, so
the window must last at least `interval / EDGE_TOLERANCE`. A shorter window, or none,
carries a warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from llenergymeasure.core.load.attribution import PowerSample, share_energy_j
from llenergymeasure.domain.load import RequestRecord, SteadyWindow, WindowFigures

EDGE_TOLERANCE = 0.05


def running_counts(intervals: Sequence[tuple[float, float]]) -> list[tuple[float, int]]:
    """`(t, n)`: from time `t` on, `n` of the intervals hold it (half-open `[start, end)`)."""
    changes: Counter[float] = Counter()
    for start_s, end_s in intervals:
        changes[start_s] += 1
        changes[end_s] -= 1
    counts, n = [], 0
    for t in sorted(changes):
        n += changes[t]
        counts.append((t, n))
    return counts


def batch_full_window(
    intervals: Sequence[tuple[float, float]], max_batch: int
) -> tuple[float, float] | None:
    """From the first time `max_batch` intervals run together to the last time they stop.

    Raises:
        ValueError: `max_batch` below 1.

    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    counts = running_counts(intervals)
    full = [k for k, (_, n) in enumerate(counts) if n >= max_batch]
    if not full:
        return None
    return counts[full[0]][0], counts[full[-1] + 1][0]


def arrivals_and_completions_window(
    records: Sequence[RequestRecord],
) -> tuple[float, float] | None:
    """From the first completion to the last arrival; None when the first comes later."""
    ends = [r.last_token_s for r in records if r.completed and r.last_token_s is not None]
    if not ends:
        return None
    start_s, end_s = min(ends), max(r.arrival_s for r in records)
    return (start_s, end_s) if start_s < end_s else None


def steady_window(
    records: Sequence[RequestRecord],
    *,
    max_batch: int | None,
    sample_interval_s: float,
    counter_interval_s: float | None = None,
) -> SteadyWindow:
    """Find the steady window of a run by the first rule that applies.

    Args:
        records: the run's requests.
        max_batch: the most requests the engine runs together; None where unknown
            (an endpoint), which leaves the second rule.
        sample_interval_s: the power sampler's interval.
        counter_interval_s: how often the energy counter updates; None where unknown.

    """
    warnings: list[str] = []
    found, rule = None, "arrivals_and_completions"
    if max_batch is not None:
        found = batch_full_window(_running_intervals(records, warnings), max_batch)
        rule = "batch_full" if found else rule
    if found is None:
        warnings.clear()
        found = arrivals_and_completions_window(records)
    interval_s = max(sample_interval_s, counter_interval_s or 0.0)
    min_trusted_s = interval_s / EDGE_TOLERANCE
    if found is None:
        warnings.append(
            "no steady state: the first request completed after the last one arrived; "
            "give the run more requests or a longer duration"
        )
    elif found[1] - found[0] < min_trusted_s:
        warnings.append(
            f"steady window of {found[1] - found[0]:.2f} s is shorter than {min_trusted_s:.2f} s "
            f"({1 / EDGE_TOLERANCE:.0f} x the {interval_s * 1000:.0f} ms sampler or counter "
            f"interval): its energy is uncertain by more than {EDGE_TOLERANCE:.0%}"
        )
    return SteadyWindow(
        rule=rule,
        start_s=found[0] if found else None,
        end_s=found[1] if found else None,
        min_trusted_s=min_trusted_s,
        warnings=warnings,
    )


def _running_intervals(
    records: Sequence[RequestRecord], warnings: list[str]
) -> list[tuple[float, float]]:
    done = [r for r in records if r.completed and r.last_token_s is not None]
    if any(r.scheduled_s is None for r in done):
        warnings.append(
            "the engine does not report admissions: a request counts as running from its "
            "arrival, so queued requests fill the batch too"
        )
    return [(r.arrival_s if r.scheduled_s is None else r.scheduled_s, r.last_token_s) for r in done]


def window_figures(
    records: Sequence[RequestRecord],
    window: tuple[float, float],
    run_energy_j: float | None,
    run_window: tuple[float, float],
    samples: Sequence[PowerSample],
) -> WindowFigures:
    """Energy, output tokens and completions inside `window` (`[start, end)`).

    Args:
        records: the run's requests.
        window: the interval, inside the run's energy window.
        run_energy_j: the energy of the whole run's window; None when unknown.
        run_window: the interval `run_energy_j` covers.
        samples: `(t_s, power_w)` whose shape shares the energy out.

    """
    energy_j = None
    if run_energy_j is not None:
        (energy_j,) = share_energy_j(run_energy_j, samples, run_window, [window])
    return WindowFigures(
        start_s=window[0],
        end_s=window[1],
        energy_j=energy_j,
        output_tokens=sum(_tokens_inside(r, *window) for r in records),
        requests_completed=sum(
            1
            for r in records
            if r.completed
            and r.last_token_s is not None
            and window[0] <= r.last_token_s < window[1]
        ),
    )


def _tokens_inside(record: RequestRecord, start_s: float, end_s: float) -> float:
    """Output tokens of a request emitted in `[start_s, end_s)`.

    Counted from the token times where the engine gave one per token; otherwise the first token
    at its time and the others spread evenly over `(first, last]`.
    """
    if record.token_times_s and len(record.token_times_s) == record.output_tokens:
        return float(sum(1 for t in record.token_times_s if start_s <= t < end_s))
    first, last = record.first_token_s, record.last_token_s
    if first is None or last is None or record.output_tokens == 0:
        return 0.0
    count = 1.0 if start_s <= first < end_s else 0.0
    rest = record.output_tokens - 1
    if rest and last > first:
        overlap_s = max(0.0, min(end_s, last) - max(start_s, first))
        count += rest * overlap_s / (last - first)
    elif rest and start_s <= last < end_s:
        count += rest
    return count
