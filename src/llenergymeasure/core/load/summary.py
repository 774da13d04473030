"""One call from a finished load run to its `LoadSummary`.

It puts the parts together and adds nothing: the steady window (`steady_state`), the
figures over the whole energy window and over the steady one, goodput over the whole
run (`goodput`) and, where the engine recorded its steps, the attributed energy
(`attribution`).
"""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.config.load import SloConfig
from llenergymeasure.core.load.arrivals import achieved_rate_per_s
from llenergymeasure.core.load.attribution import PowerSample, attribute_energy
from llenergymeasure.core.load.goodput import goodput
from llenergymeasure.core.load.steady_state import steady_window, window_figures
from llenergymeasure.domain.load import EngineStep, LoadRun, LoadSummary
from llenergymeasure.domain.metrics import percentile


def summarise_load(
    run: LoadRun,
    *,
    energy_j: float | None,
    energy_window: tuple[float, float],
    samples: Sequence[PowerSample],
    sample_interval_s: float,
    max_batch: int | None,
    slo: SloConfig | None = None,
    counter_interval_s: float | None = None,
    steps: Sequence[EngineStep] = (),
) -> LoadSummary:
    """Summarise a load run.

    Args:
        run: the runner's records.
        energy_j: the energy window's energy from the counter; None when unknown.
        energy_window: `(start_s, end_s)` of that window, on the run's clock.
        samples: `(t_s, power_w)` of the measured device(s), same clock.
        sample_interval_s: the sampler's interval.
        max_batch: the most requests the engine runs together; None where unknown.
        slo: goodput's objectives; None: no goodput.
        counter_interval_s: the energy counter's update period, where known.
        steps: the engine's steps; empty: no attribution.

    """
    records = run.requests
    done = [r for r in records if r.completed]
    ttft = [r.ttft_ms for r in done]
    tpot = [r.tpot_ms for r in done if r.tpot_ms is not None]
    e2e = [r.e2e_ms for r in done if r.e2e_ms is not None]
    queued = [r.queueing_delay_ms for r in done if r.queueing_delay_ms is not None]
    lags = [r.dispatch_lag_ms for r in records if r.dispatch_lag_ms is not None]
    planned = [r.planned_s for r in records if r.planned_s is not None]
    steady = steady_window(
        records,
        max_batch=max_batch,
        sample_interval_s=sample_interval_s,
        counter_interval_s=counter_interval_s,
    )
    whole = window_figures(records, energy_window, energy_j, energy_window, samples)
    return LoadSummary(
        mode=run.mode,
        requests=len(records),
        completed=len(done),
        planned_rate_per_s=achieved_rate_per_s(planned),
        achieved_rate_per_s=achieved_rate_per_s(sorted(r.arrival_s for r in records)),
        ttft_p50_ms=percentile(ttft, 50),
        ttft_p95_ms=percentile(ttft, 95),
        tpot_p50_ms=percentile(tpot, 50),
        tpot_p95_ms=percentile(tpot, 95),
        e2e_p50_ms=percentile(e2e, 50),
        e2e_p95_ms=percentile(e2e, 95),
        queueing_delay_p95_ms=percentile(queued, 95),
        dispatch_lag_max_ms=max(lags, default=None),
        whole=whole,
        steady_window=steady,
        steady=None
        if steady.start_s is None or steady.end_s is None
        else window_figures(
            records, (steady.start_s, steady.end_s), energy_j, energy_window, samples
        ),
        goodput=None if slo is None else goodput(records, slo, energy_j),
        attributed=None
        if energy_j is None or not steps
        else attribute_energy(energy_j, energy_window, steps, samples),
    )
