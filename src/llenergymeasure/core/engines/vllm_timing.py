"""Per-request latency of the vLLM engine on our clock, checked against vLLM's own.

The engine's step loop (`vllm.py`) stamps `time.monotonic()` when each `step()` returns
and gives every token that came back in that step its stamp; a request's timing is then
measured like a transformers batch (`core/latency.py`): TTFT = first token - submission,
end-to-end = its last counted token - submission, ITL = the gaps between its tokens,
batch return = the return of the whole step loop - submission.

vLLM keeps its own timestamps per request (`RequestStateStats`): `first_token_latency`
(its front end's wall clock, arrival to first token) and `first_token_ts` /
`last_token_ts` (its engine core's monotonic clock). From them its TTFT and its
end-to-end time (TTFT + last - first token). Ours are later by the hand-over of each
step's output to the caller; beyond `CROSS_CHECK_ABS_MS` and `CROSS_CHECK_REL` the two
disagree and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from llenergymeasure.core.latency import request_latencies_ms
from llenergymeasure.domain.metrics import LatencySamples, MeasurementWarning

CROSS_CHECK_ABS_MS = 20.0
CROSS_CHECK_REL = 0.1


@dataclass(frozen=True)
class EngineRequestStats:
    """vLLM's own timing of one request, in seconds (from its `RequestStateStats`).

    Attributes:
        first_token_latency_s: Arrival to first token on vLLM's front-end clock.
        first_token_ts_s: The engine core's monotonic time of the first token.
        last_token_ts_s: The engine core's monotonic time of the last token.

    """

    first_token_latency_s: float
    first_token_ts_s: float
    last_token_ts_s: float

    @property
    def e2e_s(self) -> float:
        """Arrival to last token: TTFT plus the decode time on the engine core's clock."""
        return self.first_token_latency_s + (self.last_token_ts_s - self.first_token_ts_s)


def engine_request_stats(output: object) -> EngineRequestStats | None:
    """VLLM's timing of a finished request (a `RequestOutput`); None where it kept none."""
    metrics = getattr(output, "metrics", None)
    if metrics is None or not getattr(metrics, "first_token_ts", 0.0):
        return None
    return EngineRequestStats(
        first_token_latency_s=metrics.first_token_latency,
        first_token_ts_s=metrics.first_token_ts,
        last_token_ts_s=metrics.last_token_ts,
    )


@dataclass(frozen=True)
class RequestTrace:
    """One request as the step loop saw it.

    Attributes:
        submitted_s: Monotonic time the request was handed to the engine.
        token_times_s: Monotonic time of each generated token (when its step returned).
        output_tokens: Tokens counted as generated (the EOS rule of `count_generated`).
        engine_stats: vLLM's own timing; None when it kept none.

    """

    submitted_s: float
    token_times_s: list[float]
    output_tokens: int
    engine_stats: EngineRequestStats | None


def measured_latencies_ms(traces: list[RequestTrace], return_time_s: float) -> LatencySamples:
    """TTFT, ITL, end-to-end and batch-return samples on our clock, in ms."""
    return LatencySamples.concat(
        [
            request_latencies_ms(t.submitted_s, t.token_times_s, [t.output_tokens], return_time_s)
            for t in traces
        ]
    )


def engine_latencies_ms(traces: list[RequestTrace]) -> LatencySamples | None:
    """The TTFT and end-to-end samples vLLM kept, in ms; None when it timed no request.

    Only requests that `measured_latencies_ms` times, in the same order. vLLM keeps no
    per-token times, so the ITL and batch-return lists stay empty.
    """
    timed = [t for t in traces if 0 < t.output_tokens <= len(t.token_times_s)]
    stats = [t.engine_stats for t in timed if t.engine_stats is not None]
    if not stats:
        return None
    return LatencySamples(
        ttft_ms=[s.first_token_latency_s * 1000.0 for s in stats],
        e2e_ms=[s.e2e_s * 1000.0 for s in stats],
    )


def disagree(ours_ms: float, theirs_ms: float) -> bool:
    """Whether two timings of one request differ by more than the stated tolerance."""
    return abs(ours_ms - theirs_ms) > max(CROSS_CHECK_ABS_MS, CROSS_CHECK_REL * abs(theirs_ms))


def cross_check_warning(
    ours: LatencySamples, theirs: LatencySamples | None
) -> MeasurementWarning | None:
    """`engine_latency_disagrees` when our TTFT or e2e of a request is off vLLM's own.

    Both lists hold the same requests in the same order (only requests with a timed
    token); with vLLM's timing missing there is nothing to compare, and no warning.
    """
    if theirs is None or len(theirs.ttft_ms) != len(ours.ttft_ms):
        return None
    pairs = {
        "TTFT": list(zip(ours.ttft_ms, theirs.ttft_ms, strict=True)),
        "e2e": list(zip(ours.e2e_ms, theirs.e2e_ms, strict=True)),
    }
    off = {name: sum(disagree(a, b) for a, b in values) for name, values in pairs.items()}
    if not any(off.values()):
        return None
    counts = ", ".join(f"{name} of {n}" for name, n in off.items() if n)
    return MeasurementWarning(
        code="engine_latency_disagrees",
        message=f"llem's and vLLM's own timings of {len(ours.ttft_ms)} request(s) differ by "
        f"more than {CROSS_CHECK_ABS_MS:g} ms and {CROSS_CHECK_REL:.0%} ({counts}); the "
        "result reports llem's (latency) and vLLM's (engine_latency_samples)",
        remediation="on a busy host the hand-over of each step's output is late; run on an "
        "idle machine, or read both figures",
    )
