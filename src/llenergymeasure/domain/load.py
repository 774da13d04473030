"""Records of a run under serving load: requests, engine steps, windows, goodput, energy.

Times (`_s`) are seconds on one monotonic clock, measured from the start of the load run;
latencies are milliseconds. An unknown value is None, never 0.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Record(BaseModel):
    # Results written by newer versions may carry fields we do not know: keep reading.
    model_config = ConfigDict(extra="ignore", frozen=True)


class RequestRecord(_Record):
    """One request of a load run, with the latencies derived from its times.

    `arrival_s` is when the load runner handed the request to the engine; `scheduled_s`
    when the engine admitted it into a running batch (None where the engine cannot tell,
    e.g. an HTTP endpoint). TTFT and end-to-end count from the arrival, so they include
    the queueing delay.
    """

    request_id: int = Field(ge=0)
    planned_s: float | None = Field(
        description="The arrival the schedule asked for; None in concurrency mode, where a "
        "request arrives when a slot frees."
    )
    arrival_s: float
    scheduled_s: float | None = None
    first_token_s: float | None = None
    last_token_s: float | None = None
    input_tokens: int | None = Field(None, ge=0)
    output_tokens: int = Field(0, ge=0)
    token_times_s: list[float] = Field(
        default_factory=list,
        description="When each output token was emitted, where the engine reports it.",
    )
    stopped_by_eos: bool | None = Field(
        None, description="It ended at an EOS token; None where the engine cannot tell."
    )
    error: str | None = Field(None, description="Why the request failed; None when it ran.")

    @property
    def completed(self) -> bool:
        """The request ran and emitted at least one token."""
        return self.error is None and self.first_token_s is not None

    @property
    def ttft_ms(self) -> float | None:
        """Arrival to first token."""
        if self.first_token_s is None:
            return None
        return (self.first_token_s - self.arrival_s) * 1000.0

    @property
    def e2e_ms(self) -> float | None:
        """Arrival to last token."""
        if self.last_token_s is None:
            return None
        return (self.last_token_s - self.arrival_s) * 1000.0

    @property
    def tpot_ms(self) -> float | None:
        """Mean time per output token after the first; None with fewer than two tokens."""
        if self.first_token_s is None or self.last_token_s is None or self.output_tokens < 2:
            return None
        return (self.last_token_s - self.first_token_s) * 1000.0 / (self.output_tokens - 1)

    @property
    def itl_ms(self) -> list[float]:
        """Gaps between consecutive output tokens (empty where the engine gave no times)."""
        times = self.token_times_s
        return [(b - a) * 1000.0 for a, b in zip(times, times[1:], strict=False)]

    @property
    def queueing_delay_ms(self) -> float | None:
        """Arrival to admission into a batch; None where the engine cannot tell."""
        if self.scheduled_s is None:
            return None
        return (self.scheduled_s - self.arrival_s) * 1000.0

    @property
    def dispatch_lag_ms(self) -> float | None:
        """How late the runner handed the request over, against its planned arrival."""
        if self.planned_s is None:
            return None
        return (self.arrival_s - self.planned_s) * 1000.0


class LoadRun(_Record):
    """The requests of one load run, in request order."""

    mode: Literal["rate", "concurrency", "trace"]
    start_monotonic_s: float = Field(
        description="time.monotonic() at the start: the origin of every `_s` time here."
    )
    end_s: float = Field(description="When the runner finished (its last request ended).")
    requests: list[RequestRecord]


class EngineStep(_Record):
    """One step of a continuous-batching engine: its interval and the tokens it processed.

    `prefill_tokens` maps a request id to the prompt tokens of it this step processed (a
    whole prompt, or a chunk of it); `decode_tokens` to the tokens it generated (1 per
    step without speculative decoding).
    """

    start_s: float
    end_s: float
    prefill_tokens: dict[int, int] = Field(default_factory=dict)
    decode_tokens: dict[int, int] = Field(default_factory=dict)


class SteadyWindow(_Record):
    """The part of a load run in which the load was steady, and how it was found."""

    rule: Literal["batch_full", "arrivals_and_completions"] = Field(
        description="batch_full: from the moment the running batch first reached its maximum "
        "to the moment it last left it (ML.ENERGY's rule at saturation); "
        "arrivals_and_completions: from the first completion to the last arrival "
        "(docs/serving-load.md)."
    )
    start_s: float | None = Field(description="None when the run had no steady state.")
    end_s: float | None = None
    min_trusted_s: float = Field(
        description="The shortest window the sampler and the energy counter resolve to the "
        "stated tolerance; a shorter one carries a warning."
    )
    warnings: list[str] = Field(default_factory=list)

    @property
    def duration_s(self) -> float | None:
        """Length of the window; None when there is none."""
        if self.start_s is None or self.end_s is None:
            return None
        return self.end_s - self.start_s


class WindowFigures(_Record):
    """Energy and throughput over one interval of a load run (the whole run, or steady)."""

    start_s: float
    end_s: float
    energy_j: float | None = Field(
        description="The counter's energy over the run; over a part of it, that energy shared "
        "out by the power samples' shape (docs/serving-load.md)."
    )
    output_tokens: float = Field(
        description="Output tokens emitted inside the interval (fractional where a request's "
        "tokens are spread evenly between its first and last token)."
    )
    requests_completed: int = Field(description="Requests whose last token fell inside.")

    @property
    def duration_s(self) -> float:
        """Length of the interval."""
        return self.end_s - self.start_s

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second; None over an empty interval."""
        return self.output_tokens / self.duration_s if self.duration_s > 0 else None

    @property
    def j_per_token(self) -> float | None:
        """Energy per output token; None when either is unknown or there are no tokens."""
        if self.energy_j is None or self.output_tokens <= 0:
            return None
        return self.energy_j / self.output_tokens


class Goodput(_Record):
    """How much of a run met its latency SLOs, and the energy per token that did.

    A request is good when it completed, its TTFT is within `ttft_slo_ms` and its TPOT
    within `tpot_slo_ms` (an SLO left unset is not checked; a request with one output
    token has no TPOT and passes that check). The energy is all of the interval's energy:
    a bad request's tokens cost energy too, so `j_per_good_token` is what a good token cost.
    """

    ttft_slo_ms: float | None
    tpot_slo_ms: float | None
    requests: int
    good_requests: int
    output_tokens: int
    good_output_tokens: int
    energy_j: float | None

    @property
    def request_share(self) -> float | None:
        """Share of requests that met the SLOs; None without requests."""
        return self.good_requests / self.requests if self.requests else None

    @property
    def token_share(self) -> float | None:
        """Share of output tokens that came from good requests; None without tokens."""
        return self.good_output_tokens / self.output_tokens if self.output_tokens else None

    @property
    def j_per_good_token(self) -> float | None:
        """Energy per output token of a good request; None without energy or good tokens."""
        if self.energy_j is None or self.good_output_tokens == 0:
            return None
        return self.energy_j / self.good_output_tokens


class RequestEnergy(_Record):
    """The energy attributed to one request, by phase."""

    request_id: int
    prefill_j: float
    decode_j: float

    @property
    def energy_j(self) -> float:
        """Prefill and decode together."""
        return self.prefill_j + self.decode_j


class AttributedEnergy(_Record):
    """A window's energy split into phases and requests by the engine's steps.

    The parts add up to `window_j` (to float rounding): prefill_j + decode_j, and the sum
    over requests. They are attributed, not measured: the split follows the power samples'
    shape over each step's interval and each step's tokens (docs/serving-load.md).
    """

    method: Literal["attributed"] = "attributed"
    window_j: float
    prefill_j: float
    decode_j: float
    between_steps_j: float = Field(
        description="The part of the energy from time no step ran (scheduling, idle waits), "
        "charged to the step before it; included in prefill_j and decode_j."
    )
    mixed_steps: int = Field(
        description="Steps that held prefill and decode tokens together, split by tokens."
    )
    requests: list[RequestEnergy]
    warnings: list[str] = Field(default_factory=list)


class LoadSummary(_Record):
    """What a load run reports: rates, latency percentiles, windows, goodput and energy.

    Percentiles are over completed requests (numpy's linear method); the whole run's
    figures cover the energy window, the steady figures the steady window, when found.
    """

    mode: Literal["rate", "concurrency", "trace"]
    requests: int
    completed: int
    planned_rate_per_s: float | None = Field(
        description="The schedule's own rate; None in concurrency mode."
    )
    achieved_rate_per_s: float | None = Field(description="Of the hand-overs.")
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    tpot_p50_ms: float | None
    tpot_p95_ms: float | None
    e2e_p50_ms: float | None
    e2e_p95_ms: float | None
    queueing_delay_p95_ms: float | None = Field(description="None where the engine cannot tell.")
    dispatch_lag_max_ms: float | None = Field(description="None in concurrency mode.")
    whole: WindowFigures
    steady_window: SteadyWindow
    steady: WindowFigures | None
    goodput: Goodput | None = Field(description="Over the whole run; None without load.slo.")
    attributed: AttributedEnergy | None = Field(
        description="None where the engine records no steps or the energy is unknown."
    )
