"""The load runner: hands requests to an engine at their due times, or N at a time.

The runner knows no engine. An engine is an async `submit(request_id, request) ->
Completion` (`request_id` numbers the run's requests from 0, as its records do): it
returns when the request has finished, with the `time.monotonic()` times of its tokens
(an engine that runs in a thread wraps itself with `asyncio.to_thread`). The runner
stamps each request's arrival on the same clock when it hands it over:

- rate and trace loads: request `i` is handed over at `start + schedule_s[i]`, whatever
  is still running (an open loop, as a server's clients do); the delay of the hand-over
  against its due time is kept (`dispatch_lag_ms`).
- concurrency loads: `concurrency` slots each hand over the next request as soon as
  their previous one finished (a closed loop), until the requests run out or
  `duration_s` has passed; requests then running are finished.

A request whose `submit` raises is recorded with its error (it counts as failed in
goodput) and the run goes on.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from llenergymeasure.domain.load import LoadRun, RequestRecord
from llenergymeasure.log import logger

Request = TypeVar("Request")


@dataclass(frozen=True, slots=True)
class Completion:
    """What an engine reports for one finished request; times on `time.monotonic()`.

    Attributes:
        output_tokens: tokens the request generated.
        first_token_s: when its first output token was emitted (None: it emitted none).
        last_token_s: when its last output token was emitted.
        input_tokens: its prompt tokens, where the engine counts them.
        scheduled_s: when the engine admitted it into a running batch, where it can tell.
        token_times_s: when each output token was emitted, where the engine reports it.
        stopped_by_eos: whether it ended at an EOS token, where the engine can tell.

    """

    output_tokens: int
    first_token_s: float | None
    last_token_s: float | None
    input_tokens: int | None = None
    scheduled_s: float | None = None
    token_times_s: Sequence[float] = field(default_factory=tuple)
    stopped_by_eos: bool | None = None


Submit = Callable[[int, Request], Awaitable[Completion]]


async def run_scheduled(
    requests: Iterable[Request],
    submit: Submit,
    schedule_s: Sequence[float],
    mode: Literal["rate", "trace"] = "rate",
) -> LoadRun:
    """Hand request `i` to the engine at `schedule_s[i]` seconds from now (an open loop).

    Args:
        requests: at least as many requests as the schedule has times.
        submit: the engine.
        schedule_s: due times from the start, in order.
        mode: `rate` or `trace`, as recorded.

    Raises:
        ValueError: fewer requests than due times.

    """
    chosen = list(itertools.islice(requests, len(schedule_s)))
    if len(chosen) < len(schedule_s):
        raise ValueError(f"{len(schedule_s)} due times but only {len(chosen)} requests")
    start_s = time.monotonic()
    tasks = []
    for request_id, (due_s, request) in enumerate(zip(schedule_s, chosen, strict=True)):
        delay_s = start_s + due_s - time.monotonic()
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        tasks.append(asyncio.create_task(_serve(request_id, request, submit, start_s, due_s)))
    records = await asyncio.gather(*tasks)
    return _load_run(mode, start_s, records)


async def run_concurrent(
    requests: Iterable[Request],
    submit: Submit,
    concurrency: int,
    duration_s: float | None = None,
) -> LoadRun:
    """Keep `concurrency` requests in flight (a closed loop).

    Args:
        requests: handed over in order; an endless iterable needs `duration_s`.
        submit: the engine.
        concurrency: requests in flight at once.
        duration_s: hand over no request after this many seconds; None: until the
            requests run out.

    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    start_s = time.monotonic()
    numbered: Iterator[tuple[int, Request]] = enumerate(requests)
    records: list[RequestRecord] = []

    async def slot() -> None:
        while duration_s is None or time.monotonic() - start_s < duration_s:
            item = next(numbered, None)
            if item is None:
                return
            records.append(await _serve(*item, submit, start_s, None))

    await asyncio.gather(*(slot() for _ in range(concurrency)))
    return _load_run("concurrency", start_s, records)


async def _serve(
    request_id: int, request: Request, submit: Submit, start_s: float, planned_s: float | None
) -> RequestRecord:
    arrival_s = time.monotonic()
    try:
        done = await submit(request_id, request)
    except Exception as e:  # one request failing is a result of the run, not its end
        logger.warning("request {} failed: {}: {}", request_id, type(e).__name__, e)
        return RequestRecord(
            request_id=request_id,
            planned_s=planned_s,
            arrival_s=arrival_s - start_s,
            error=f"{type(e).__name__}: {e}",
        )
    return RequestRecord(
        request_id=request_id,
        planned_s=planned_s,
        arrival_s=arrival_s - start_s,
        scheduled_s=_since(done.scheduled_s, start_s),
        first_token_s=_since(done.first_token_s, start_s),
        last_token_s=_since(done.last_token_s, start_s),
        input_tokens=done.input_tokens,
        output_tokens=done.output_tokens,
        token_times_s=[t - start_s for t in done.token_times_s],
        stopped_by_eos=done.stopped_by_eos,
    )


def _since(t_s: float | None, start_s: float) -> float | None:
    return None if t_s is None else t_s - start_s


def _load_run(
    mode: Literal["rate", "concurrency", "trace"],
    start_s: float,
    records: Iterable[RequestRecord],
) -> LoadRun:
    return LoadRun(
        mode=mode,
        start_monotonic_s=start_s,
        end_s=time.monotonic() - start_s,
        requests=sorted(records, key=lambda r: r.request_id),
    )
