"""The `load:` section run against any engine's async `submit`: schedule, then the runner."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import TypeVar

from llenergymeasure.config.load import LoadConfig
from llenergymeasure.core.load.arrivals import load_schedule_s
from llenergymeasure.core.load.runner import Submit, run_concurrent, run_scheduled
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.domain.load import LoadRun
from llenergymeasure.domain.load import RequestRecord as LoadRequestRecord
from llenergymeasure.prompts import Prompt

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


def served_requests(
    served: Sequence[LoadRequestRecord], prompts: Sequence[Prompt]
) -> list[RequestRecord]:
    """The result's request records of a load's served requests (the prompts repeat)."""
    return [
        RequestRecord(
            prompt_id=prompts[r.request_id % len(prompts)].id,
            input_tokens=r.input_tokens or 0,
            output_tokens=r.output_tokens,
            stopped_by_eos=bool(r.stopped_by_eos),
        )
        for r in served
    ]
