"""The `load:` section run against any engine's async `submit`: schedule, then the runner."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TypeVar

from llenergymeasure.config.models import LoadConfig
from llenergymeasure.core.load.arrivals import load_schedule_s
from llenergymeasure.core.load.runner import Submit, run_concurrent, run_scheduled
from llenergymeasure.domain.load import LoadRun

Request = TypeVar("Request")


async def run_load(
    load: LoadConfig, seed: int, requests: Sequence[Request], submit: Submit
) -> LoadRun:
    """Serve `load` with `requests` repeated as often as it needs.

    Rate and trace loads are handed over at their seeded or replayed due times (an open
    loop); a concurrency load keeps `load.concurrency` in flight, for `num_requests`
    requests or `duration_s` seconds.
    """
    endless = itertools.cycle(requests)
    schedule = load_schedule_s(load, seed)
    if schedule is not None:
        mode = "trace" if load.mode == "trace" else "rate"
        return await run_scheduled(endless, submit, schedule, mode)
    if load.num_requests is not None:
        endless = itertools.islice(endless, load.num_requests)
    return await run_concurrent(endless, submit, load.concurrency, load.duration_s)
