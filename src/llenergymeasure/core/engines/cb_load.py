"""Requests arriving over time (`load:` modes) served by transformers' continuous batching.

The load runner (`core/load/runner.py`) hands each request over at its due time, or
keeps N in flight; here a request is added to the running manager under its own id,
and one collector thread reads the manager's finished results and resolves the future
of each. Token times come from transformers (`perf_counter`) and are moved onto the
monotonic clock by the offset measured when the manager started.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.base import RequestsDoneFn
from llenergymeasure.core.engines.generation import count_generated
from llenergymeasure.core.load.drive import run_load
from llenergymeasure.core.load.runner import Completion
from llenergymeasure.domain.load import LoadRun
from llenergymeasure.errors import LlemError
from llenergymeasure.prompts import Prompt

COLLECT_POLL_S = 0.05


@dataclass(frozen=True)
class LoadRequest:
    """One request of the load: a prompt (prompts repeat when the load needs more)."""

    prompt: Prompt
    input_ids: list[int]


class ManagerClient:
    """An async `submit` over a started manager; `close` stops its collector thread."""

    def __init__(
        self,
        manager: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        max_new_tokens: int,
        stop_ids: set[int],
        clock_offset_s: float,
        requests_done: RequestsDoneFn,
    ) -> None:
        self.manager = manager
        self.requests_done = requests_done
        self._done = 0
        self._tokens = 0
        self.loop = loop
        self.max_new_tokens = max_new_tokens
        self.stop_ids = stop_ids
        self.clock_offset_s = clock_offset_s
        self._pending: dict[str, asyncio.Future] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._collector = threading.Thread(
            target=self._collect, name="llem-cb-collect", daemon=True
        )
        self._collector.start()

    async def submit(self, number: int, request: LoadRequest) -> Completion:
        """Add the request to the running batch; return when it has finished."""
        request_id = load_request_name(number)
        future = self.loop.create_future()
        with self._lock:
            self._pending[request_id] = future
        added = self.manager.add_request(
            input_ids=request.input_ids,
            request_id=request_id,
            max_new_tokens=self.max_new_tokens,
            record_timestamps=True,
        )
        if added is None:
            with self._lock:
                self._pending.pop(request_id, None)
            raise LlemError(f"transformers' manager dropped request {request_id}")
        output = await future
        n_out, eos = count_generated(list(output.generated_tokens), self.stop_ids)
        self._done += 1
        self._tokens += n_out
        self.requests_done(self._done, self._tokens)
        times = [t + self.clock_offset_s for t in (output.timestamps or [])][:n_out]
        scheduled = output.lifespan[0]
        return Completion(
            output_tokens=n_out,
            first_token_s=times[0] if times else None,
            last_token_s=times[-1] if times else None,
            input_tokens=len(request.input_ids),
            scheduled_s=scheduled + self.clock_offset_s if scheduled >= 0 else None,
            token_times_s=times,
            stopped_by_eos=eos,
        )

    def close(self) -> None:
        """Stop the collector thread (the manager itself belongs to the engine)."""
        self._stop.set()
        self._collector.join(timeout=5.0)

    def _collect(self) -> None:
        try:
            self._collect_until_stopped()
        except Exception as e:  # a broken manager must fail the requests, not hang them
            self._fail_all(f"reading transformers' results failed: {type(e).__name__}: {e}")

    def _collect_until_stopped(self) -> None:
        while not self._stop.is_set():
            output = self.manager.get_result(timeout=COLLECT_POLL_S)
            if output is None:
                if not self.manager.is_running():
                    self._fail_all(stopped_early_message(self.manager))
                    return
                continue
            if not output.is_finished():
                continue
            with self._lock:
                future = self._pending.pop(output.request_id, None)
            if future is None:
                continue
            if output.error is not None:
                error = LlemError(f"request {output.request_id} failed: {output.error}")
                self.loop.call_soon_threadsafe(_set_exception, future, error)
            else:
                self.loop.call_soon_threadsafe(_set_result, future, output)

    def _fail_all(self, message: str) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            self.loop.call_soon_threadsafe(_set_exception, future, LlemError(message))


def load_request_name(number: int) -> str:
    """The id under which transformers holds the load's request `number`."""
    return f"llem-load-{number}"


def serve_load(
    manager: Any,
    requests: Sequence[LoadRequest],
    config: ExperimentConfig,
    *,
    stop_ids: set[int],
    clock_offset_s: float,
    requests_done: RequestsDoneFn,
) -> LoadRun:
    """Run the config's load against the manager; the prompts repeat as often as needed."""

    async def run() -> LoadRun:
        client = ManagerClient(
            manager,
            asyncio.get_running_loop(),
            max_new_tokens=config.generation.max_new_tokens,
            stop_ids=stop_ids,
            clock_offset_s=clock_offset_s,
            requests_done=requests_done,
        )
        try:
            return await run_load(config.load, config.seed, requests, client.submit)
        finally:
            client.close()

    return asyncio.run(run())


def stopped_early_message(manager: Any) -> str:
    """Why the manager's thread ended, with transformers' own error where it kept one."""
    status = getattr(manager, "background_thread_status", None)
    cause = getattr(status, "fatal_error", None)
    return "transformers' continuous-batching thread stopped early" + (
        f": {cause}" if cause else ""
    )


def _set_result(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)


def _set_exception(future: asyncio.Future, error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
