"""The steps of transformers' continuous batching: when each ran and which tokens it held.

transformers runs its batches in a thread of its own and publishes no per-step record, so
the recorder wraps the manager's `_generation_step` (one forward pass of the running
batch). Before each pass it reads the batch the scheduler prepared: each request's query
length, prefill until a pass of it has produced its first token (`has_new_token`), decode
after; recorded from the passes themselves, so that with async batching, where the next
pass is prepared before the last one's tokens are read, the phase is still right. It stamps
the pass's start and end on `time.monotonic()`. On a GPU the end is when the pass's
outputs reached the host, which the sync path waits for; with transformers' async
batching the pass may still run after its recorded end, a looser bound.

This leans on transformers' internals (`_generation_step`, `batch_processor`,
`requests_in_batch`, `has_new_token`); where a version lacks them the recorder records
nothing and says why, and the run goes on without per-step attribution.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from llenergymeasure.domain.load import EngineStep


@dataclass(frozen=True, slots=True)
class RawStep:
    """One pass, before its requests are named: times on `time.monotonic()`."""

    start_s: float
    end_s: float
    prefill: tuple[tuple[str, int], ...]
    decode: tuple[tuple[str, int], ...]


class StepRecorder:
    """Records the manager's passes while `recording` is on; `steps()` names them."""

    def __init__(self, manager: Any) -> None:
        """Wrap `manager._generation_step` (the manager must not have started a pass yet)."""
        self.manager = manager
        self.recording = False
        self.unavailable: str | None = None
        self._raw: list[RawStep] = []
        self._first_token_passed: set[str] = set()
        self._lock = threading.Lock()
        original = getattr(manager, "_generation_step", None)
        if original is None:
            self.unavailable = "this transformers has no ContinuousBatchingManager._generation_step"
            return
        manager._generation_step = functools.partial(self._timed_step, original)

    def start(self) -> None:
        """Record from now on, from an empty list."""
        with self._lock:
            self._raw = []
        self.recording = True

    def stop(self) -> None:
        """Record no more."""
        self.recording = False

    def steps(self, number_of: Mapping[str, int], origin_s: float) -> list[EngineStep]:
        """The recorded passes with transformers' ids turned into the run's request numbers.

        Args:
            number_of: transformers' request id -> the run's request number; requests not
                in it (warmup, other work) are left out of the steps.
            origin_s: `time.monotonic()` of the run's start (its records' clock).

        """
        if self.unavailable is not None:
            return []  # steps up to a failure would give the last one the rest of the window
        with self._lock:
            raw = list(self._raw)
        steps = []
        for step in raw:
            prefill = _numbered(step.prefill, number_of)
            decode = _numbered(step.decode, number_of)
            if prefill or decode:
                steps.append(
                    EngineStep(
                        start_s=step.start_s - origin_s,
                        end_s=step.end_s - origin_s,
                        prefill_tokens=prefill,
                        decode_tokens=decode,
                    )
                )
        return steps

    def _timed_step(self, original: Callable[[], None]) -> None:
        if not self.recording or self.unavailable is not None:
            original()
            return
        batch = self._batch()
        start_s = time.monotonic()
        original()
        end_s = time.monotonic()
        if batch is not None:
            with self._lock:
                self._raw.append(RawStep(start_s, end_s, *batch))

    def _batch(self) -> tuple[tuple[tuple[str, int], ...], tuple[tuple[str, int], ...]] | None:
        """The prepared batch's prefill and decode tokens per request id."""
        try:
            io = self.manager.batch_processor.inputs_and_outputs
            if not hasattr(io, "requests_in_batch") and hasattr(io, "io_pairs"):
                io = io.io_pairs[io.current_pair].host_io
            prefill, decode = [], []
            for future in io.requests_in_batch:
                # The scheduler marks a request decoding before its prefill pass runs:
                # the phase is read from the passes, the first to give a token ends it.
                request_id = future.state.request_id
                phase = decode if request_id in self._first_token_passed else prefill
                phase.append((request_id, int(future.query_length)))
                if future.has_new_token:
                    self._first_token_passed.add(request_id)
        except AttributeError as e:
            self.unavailable = f"transformers' batch could not be read: {e}"
            return None
        return tuple(prefill), tuple(decode)


def _numbered(tokens: tuple[tuple[str, int], ...], number_of: Mapping[str, int]) -> dict[int, int]:
    named: dict[int, int] = {}
    for request_id, n in tokens:
        number = number_of.get(request_id)
        if number is not None and n > 0:
            named[number] = named.get(number, 0) + n
    return named
