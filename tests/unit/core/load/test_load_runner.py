"""The load runner's hand-overs, timed on the monotonic clock with real sleeps, and its
records from a real engine: builtin:tiny-llama's `generate`, one request at a time."""

from __future__ import annotations

import asyncio
import itertools
import statistics
import threading
import time

import pytest

from llenergymeasure.core.load.runner import Completion, run_concurrent, run_scheduled

SCHEDULE_S = [i * 0.04 for i in range(11)]


class Probe:
    """A `submit` that takes `busy_s` and counts the requests it holds at once."""

    def __init__(self, busy_s: float, fail: set[int] = frozenset()) -> None:
        self.busy_s, self.fail = busy_s, fail
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, request_id: int, request: int) -> Completion:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            first = time.monotonic()
            await asyncio.sleep(self.busy_s)
            if request in self.fail:
                raise RuntimeError("engine refused it")
            return Completion(output_tokens=2, first_token_s=first, last_token_s=time.monotonic())
        finally:
            self.in_flight -= 1


def test_scheduled_requests_are_handed_over_on_time_whatever_is_running() -> None:
    probe = Probe(busy_s=0.3)  # each request outlives several later arrivals
    run = asyncio.run(run_scheduled(range(100), probe, SCHEDULE_S))
    lags_ms = [r.dispatch_lag_ms for r in run.requests]
    assert [r.planned_s for r in run.requests] == SCHEDULE_S
    assert min(lags_ms) >= 0  # never early
    assert statistics.median(lags_ms) < 20 and max(lags_ms) < 250  # a shared 2-core machine
    assert probe.most_in_flight >= 7  # an open loop: 0.3 s of work at 25 requests/s
    assert run.end_s >= SCHEDULE_S[-1] + 0.3
    assert all(r.ttft_ms == pytest.approx(0, abs=20) and r.e2e_ms >= 300 for r in run.requests)


def test_concurrency_keeps_that_many_in_flight_and_no_more() -> None:
    probe = Probe(busy_s=0.05)
    started = time.monotonic()
    run = asyncio.run(run_concurrent(range(12), probe, concurrency=3))
    wall_s = time.monotonic() - started
    assert probe.most_in_flight == 3
    assert [r.request_id for r in run.requests] == list(range(12))
    assert all(r.planned_s is None for r in run.requests)
    assert 4 * 0.05 <= wall_s < 4 * 0.05 + 0.5  # four rounds of three
    # A slot hands its next request over as soon as its previous one ended.
    ends = sorted(r.last_token_s for r in run.requests)
    arrivals = sorted(r.arrival_s for r in run.requests)[3:]
    assert all(0 <= a - e < 0.05 for a, e in zip(arrivals, ends, strict=False))


def test_a_duration_stops_new_requests_and_lets_running_ones_finish() -> None:
    run = asyncio.run(run_concurrent(itertools.count(), Probe(busy_s=0.05), 2, duration_s=0.3))
    assert max(r.arrival_s for r in run.requests) < 0.3
    assert 6 <= len(run.requests) <= 14  # 2 slots x about 6 rounds of at least 0.05 s
    assert all(r.completed for r in run.requests)


def test_a_failed_request_is_recorded_and_the_run_goes_on() -> None:
    run = asyncio.run(run_scheduled(range(5), Probe(0.01, fail={2}), SCHEDULE_S[:5]))
    assert [r.completed for r in run.requests] == [True, True, False, True, True]
    assert run.requests[2].error == "RuntimeError: engine refused it"
    assert run.requests[2].ttft_ms is None


def test_a_schedule_longer_than_the_requests_is_refused() -> None:
    with pytest.raises(ValueError, match="11 due times but only 3 requests"):
        asyncio.run(run_scheduled(range(3), Probe(0.0), SCHEDULE_S))


@pytest.fixture(scope="module")
def tiny_engine():
    """builtin:tiny-llama's generate as an engine: one request at a time, in a thread."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.generation.streamers import BaseStreamer

    from llenergymeasure.models import resolve_model

    path = resolve_model("builtin:tiny-llama").path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    lock = threading.Lock()

    class Stamps(BaseStreamer):
        """Stamps each new token; `generate` first puts the prompt, then one token a step."""

        def __init__(self) -> None:
            self.times: list[float] = []
            self.prompt_seen = False

        def put(self, value) -> None:
            if self.prompt_seen:
                self.times.append(time.monotonic())
            self.prompt_seen = True

        def end(self) -> None:
            pass

    def generate(prompt: str) -> Completion:
        inputs = tokenizer([prompt], return_tensors="pt")
        with lock:
            scheduled = time.monotonic()
            stamps = Stamps()
            with torch.no_grad():
                out = model.generate(
                    **inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False, streamer=stamps
                )
        new_tokens = out.shape[1] - inputs["input_ids"].shape[1]
        return Completion(
            output_tokens=new_tokens,
            first_token_s=stamps.times[0],
            last_token_s=stamps.times[-1],
            input_tokens=inputs["input_ids"].shape[1],
            scheduled_s=scheduled,
            token_times_s=stamps.times,
        )

    async def submit(request_id: int, prompt: str) -> Completion:
        return await asyncio.to_thread(generate, prompt)

    torch.set_num_threads(1)
    generate("warm up")
    return submit


def test_records_from_a_real_engine_show_its_queue(tiny_engine) -> None:
    """Six requests due at once for an engine that serves one at a time: each waits for
    the ones before it, and its TTFT counts that wait."""
    prompts = [f"Request number {i} asks about the energy of inference" for i in range(6)]
    run = asyncio.run(run_scheduled(prompts, tiny_engine, [0.0] * 6))
    records = sorted(run.requests, key=lambda r: r.scheduled_s)
    for r in records:
        assert r.output_tokens == 6 and len(r.token_times_s) == 6 and r.input_tokens > 5
        assert r.arrival_s <= r.scheduled_s < r.first_token_s <= r.last_token_s
        assert r.tpot_ms > 0 and len(r.itl_ms) == 5
        assert r.tpot_ms == pytest.approx(statistics.mean(r.itl_ms))
        assert r.ttft_ms == pytest.approx(
            r.queueing_delay_ms + (r.first_token_s - r.scheduled_s) * 1000
        )
    for before, after in itertools.pairwise(records):
        assert after.scheduled_s >= before.last_token_s  # served one after the other
        assert after.queueing_delay_ms > before.queueing_delay_ms
    assert records[-1].ttft_ms > records[-1].e2e_ms - records[-1].queueing_delay_ms
