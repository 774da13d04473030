"""Requests arriving over time (`load:` modes) served by vLLM's engine, stepped by hand.

One thread: the load runner's event loop also drives vLLM. A step-loop task calls
`LLMEngine.step()` while any request is in flight (and waits on an event when none
is); `submit` adds the request under its own id and waits for the step loop to resolve
it. `step()` blocks the loop while vLLM's engine core runs, so a request due during a
step is handed over when the step returns: the runner's `dispatch_lag_ms` records that
delay, about one step at most.

Tokens are counted and stamped as offline (`vllm.py`): up to and including the first
EOS (`count_generated`), each at the `time.monotonic()` its step returned. Each step is
an `EngineStep`, from the call of `step()` to its return: a request's first output
carries its prompt as `prefill_tokens` (less the tokens vLLM's prefix cache served)
and its first token with it; the tokens it gets in later steps are `decode_tokens`.
A step that returned no tokens (a chunk of a chunked prefill, a preemption's
recompute) is joined to the next step that did, whose requests it served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llenergymeasure.config.load import LoadConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.base import EngineOutput, RequestsDoneFn, Workload
from llenergymeasure.core.engines.cb_load import LoadRequest, load_request_name
from llenergymeasure.core.engines.generation import count_generated
from llenergymeasure.core.engines.vllm_timing import (
    EngineRequestStats,
    RequestTrace,
    cross_check_warning,
    engine_latencies_ms,
    engine_request_stats,
)
from llenergymeasure.core.flops import BatchShape
from llenergymeasure.core.latency import request_latencies_ms
from llenergymeasure.core.load.drive import run_load, served_requests
from llenergymeasure.core.load.runner import Completion
from llenergymeasure.domain.load import EngineStep, LoadRun
from llenergymeasure.domain.metrics import LatencySamples
from llenergymeasure.errors import LlemError

# Event-loop iterations a due hand-over takes after a step: the runner's timer fires, its
# task wakes and starts the request's task, which submits (the step loop, resumed first
# in each iteration, must still be yielding in that last one). Yielding that often
# between steps hands a request over before the next step instead of after it.
HAND_OVER_YIELDS = 4


@dataclass
class _InFlight:
    """One request between its hand-over and its last output."""

    number: int
    future: asyncio.Future
    tokens: list[int] = field(default_factory=list)
    times_s: list[float] = field(default_factory=list)
    final: Any = None


@dataclass(frozen=True)
class ServedLoad:
    """The runner's records, the engine's steps on the run's clock, vLLM's own timings.

    `engine_stats` maps a request number to vLLM's timing of it (None: it kept none).
    """

    run: LoadRun
    steps: list[EngineStep]
    engine_stats: dict[int, EngineRequestStats | None]


class StepLoop:
    """An async `submit` over vLLM's `LLMEngine`, and the loop that steps it."""

    def __init__(
        self, engine: Any, params: Any, stop_ids: set[int], requests_done: RequestsDoneFn
    ) -> None:
        self.engine = engine
        self.params = params
        self.stop_ids = stop_ids
        self.requests_done = requests_done
        self.finals: dict[int, Any] = {}
        self._in_flight: dict[str, _InFlight] = {}
        self._wake = asyncio.Event()
        self._steps: list[tuple[float, float, dict[int, int], dict[int, int]]] = []
        self._tokens_out = 0
        self._broken: Exception | None = None

    async def submit(self, number: int, request: LoadRequest) -> Completion:
        """Add the request to vLLM's running batch; return when it has finished."""
        if self._broken is not None:
            broken = self._broken
            raise LlemError(f"vLLM's engine failed: {type(broken).__name__}: {broken}")
        name = load_request_name(number)
        state = _InFlight(number, asyncio.get_running_loop().create_future())
        self._in_flight[name] = state
        self.engine.add_request(name, {"prompt_token_ids": request.input_ids}, self.params)
        self._wake.set()
        await state.future
        n_out, eos = count_generated(state.tokens, self.stop_ids)
        times_s = state.times_s[:n_out]
        scheduled_s = getattr(state.final.metrics, "scheduled_ts", 0.0)
        return Completion(
            output_tokens=n_out,
            first_token_s=times_s[0] if times_s else None,
            last_token_s=times_s[-1] if times_s else None,
            input_tokens=len(state.final.prompt_token_ids),
            # The engine core's monotonic clock: the host's, as time.monotonic() is.
            scheduled_s=scheduled_s or None,
            token_times_s=times_s,
            stopped_by_eos=eos,
        )

    async def step_until_cancelled(self) -> None:
        """Step while requests are in flight; a failed step fails them and all later ones."""
        joined_start_s: float | None = None
        while self._broken is None:
            if not self.engine.has_unfinished_requests():
                self._wake.clear()
                await self._wake.wait()
                continue
            start_s = time.monotonic() if joined_start_s is None else joined_start_s
            try:
                outputs = self.engine.step()
                progressed = self._record(start_s, time.monotonic(), outputs)
            except Exception as e:  # the requests fail, the run goes on to record them
                self._fail_all(e)
                continue
            joined_start_s = None if progressed else start_s
            for _ in range(HAND_OVER_YIELDS):  # let the runner hand over requests now due
                await asyncio.sleep(0)

    def steps_since(self, start_monotonic_s: float) -> list[EngineStep]:
        """The recorded steps, on the clock of a load run that started then."""
        return [
            EngineStep(
                start_s=start - start_monotonic_s,
                end_s=end - start_monotonic_s,
                prefill_tokens=prefill,
                decode_tokens=decode,
            )
            for start, end, prefill, decode in self._steps
        ]

    def _record(self, start_s: float, end_s: float, outputs: list[Any]) -> bool:
        """Stamp each output's tokens and keep the step; whether it processed any."""
        prefill: dict[int, int] = {}
        decode: dict[int, int] = {}
        finished = []
        for output in outputs:
            state = self._in_flight.get(output.request_id)
            if state is None:  # not a request of this load run
                continue
            new = list(output.outputs[0].token_ids)
            if not state.tokens and new:
                # The prompt's pass yields the first token: both belong to the prefill.
                prompt = len(output.prompt_token_ids) - (output.num_cached_tokens or 0)
                prefill[state.number] = prompt
                if len(new) > 1:
                    decode[state.number] = len(new) - 1
            elif new:
                decode[state.number] = len(new)
            state.tokens.extend(new)
            state.times_s.extend([end_s] * len(new))
            self._tokens_out += len(new)
            if output.finished:
                state.final = output
                finished.append(output.request_id)
        for name in finished:
            state = self._in_flight.pop(name)
            self.finals[state.number] = state.final
            state.future.set_result(None)
        if finished:
            self.requests_done(len(self.finals), self._tokens_out)
        if not prefill and not decode:
            return False
        self._steps.append((start_s, end_s, prefill, decode))
        return True

    def _fail_all(self, error: Exception) -> None:
        self._broken = error
        in_flight, self._in_flight = self._in_flight, {}
        for state in in_flight.values():
            message = f"vLLM's engine failed: {type(error).__name__}: {error}"
            state.future.set_exception(LlemError(message))


def serve_load(
    engine: Any,
    requests: Sequence[LoadRequest],
    load: LoadConfig,
    seed: int,
    *,
    params: Any,
    stop_ids: set[int],
    requests_done: RequestsDoneFn,
) -> ServedLoad:
    """Run `load` against vLLM's engine; the prompts repeat as often as it needs."""

    async def run() -> ServedLoad:
        loop = StepLoop(engine, params, stop_ids, requests_done)
        stepping = asyncio.create_task(loop.step_until_cancelled())
        try:
            served = await run_load(load, seed, requests, loop.submit)
        finally:
            stepping.cancel()
        return ServedLoad(
            run=served,
            steps=loop.steps_since(served.start_monotonic_s),
            engine_stats={n: engine_request_stats(o) for n, o in loop.finals.items()},
        )

    return asyncio.run(run())


def serve_load_output(
    engine: Any,
    workload: Workload,
    config: ExperimentConfig,
    params: Any,
    stop_ids: set[int],
    requests_done: RequestsDoneFn,
) -> EngineOutput:
    """The `load:` section served by vLLM: the runner's records, latencies and steps."""
    pairs = zip(workload.prompts, workload.items, strict=True)
    served = serve_load(
        engine,
        [LoadRequest(prompt, ids) for prompt, ids in pairs],
        config.load,
        config.seed,
        params=params,
        stop_ids=stop_ids,
        requests_done=requests_done,
    )
    done = [r for r in served.run.requests if r.error is None]
    requests = served_requests(done, workload.prompts)
    # Timed from each request's arrival: queueing is part of what a client waits.
    latency = LatencySamples.concat(
        [
            request_latencies_ms(r.arrival_s, r.token_times_s, [r.output_tokens], r.last_token_s)
            for r in done
        ]
    )
    origin_s = served.run.start_monotonic_s
    traces = [
        RequestTrace(
            origin_s + r.arrival_s,
            [origin_s + t for t in r.token_times_s],
            r.output_tokens,
            served.engine_stats.get(r.request_id),
        )
        for r in done
    ]
    engine_latency = engine_latencies_ms(traces)
    warning = cross_check_warning(latency, engine_latency)
    return EngineOutput(
        requests=requests,
        latency=latency,
        # Each request's own prompt and decode steps, unpadded (as offline).
        shapes=[
            BatchShape(
                rows=1, padded_prompt_tokens=q.input_tokens, steps=q.output_tokens, padded=False
            )
            for q in requests
        ],
        batch_sizes=[len(s.prefill_tokens.keys() | s.decode_tokens.keys()) for s in served.steps],
        load_run=served.run,
        engine_latency=engine_latency,
        warnings=[warning] if warning is not None else [],
        steps=served.steps,
    )
