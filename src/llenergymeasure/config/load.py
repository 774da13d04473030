"""The `load:` section: requests arriving over time (docs/serving-load.md)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from llenergymeasure.config.base import Section

# Engines whose runner serves requests arriving over time; every other serves `offline`.
LOAD_SERVING_ENGINES = frozenset({"transformers-cb", "vllm"})
# The load modes each field of LoadConfig applies to (mode itself applies to all).
LOAD_FIELD_MODES = {
    "rate_per_s": {"rate"},
    "arrival": {"rate"},
    "burstiness": {"rate"},
    "concurrency": {"concurrency"},
    "trace": {"trace"},
    "num_requests": {"rate", "concurrency"},
    "duration_s": {"rate", "concurrency", "trace"},
    "slo": {"rate", "concurrency", "trace"},
    "endpoint": {"rate", "concurrency", "trace"},
    "allow_remote_endpoint": {"rate", "concurrency", "trace"},
    "endpoint_gpus": {"rate", "concurrency", "trace"},
}


class SloConfig(Section):
    """Latency objectives a request must meet to count towards goodput (unset: not checked)."""

    ttft_ms: float | None = Field(None, gt=0, le=3_600_000, description="Arrival to first token.")
    tpot_ms: float | None = Field(
        None, gt=0, le=3_600_000, description="Mean time per output token after the first."
    )


class LoadConfig(Section):
    """The load the engine serves: offline batches, or requests arriving over time.

    Fields apply to the modes named in their descriptions; setting one for another mode
    is an error naming it. The arrival times are seeded by the experiment's `seed`.
    """

    mode: Literal["offline", "rate", "concurrency", "trace"] = Field(
        "offline",
        description="offline: the prompts once, as the engine runs them; rate: "
        "requests arriving at load.rate_per_s; concurrency: load.concurrency requests kept "
        "in flight; trace: arrivals replayed from load.trace.",
    )
    rate_per_s: float | None = Field(
        None, gt=0, le=100_000, description="rate: requests per second."
    )
    arrival: Literal["constant", "poisson", "gamma"] = Field(
        "poisson",
        description="rate: constant gaps, exponential gaps (Poisson arrivals), or gamma gaps "
        "of shape load.burstiness.",
    )
    burstiness: float | None = Field(
        None,
        gt=0,
        le=1_000,
        description="rate, arrival gamma: the gamma shape; 1 is Poisson, below 1 burstier, "
        "above 1 more regular.",
    )
    concurrency: int | None = Field(
        None, ge=1, le=100_000, description="concurrency: requests kept in flight."
    )
    trace: Path | None = Field(
        None,
        strict=False,
        description='trace: a JSONL file, one {"arrival_s": seconds from the start} per line, '
        "in order.",
    )
    num_requests: int | None = Field(
        None, ge=1, le=10_000_000, description="rate, concurrency: how many requests to send."
    )
    duration_s: float | None = Field(
        None,
        gt=0,
        le=7 * 86_400,
        description="rate, concurrency: send requests for this long instead; trace: replay "
        "only the arrivals before it.",
    )
    slo: SloConfig | None = Field(None, description="Goodput's latency objectives.")
    endpoint: str | None = Field(
        None,
        description="An OpenAI-compatible server on this host to send the requests to "
        "(http://127.0.0.1:PORT/v1); null: the experiment's own engine.",
    )
    endpoint_gpus: list[int] = Field(
        default_factory=list,
        description="The GPUs (CUDA ordinals on this host) the endpoint's server runs on: "
        "their energy is measured. Empty: the host's CPU and memory only.",
    )
    allow_remote_endpoint: bool = Field(
        False,
        description="Accept an endpoint host that is not a loopback address; its GPUs must "
        "still be this host's for the energy to be its own.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> LoadConfig:
        # A value other than the default, not "a field given": a dumped config holds them all.
        for field, modes in LOAD_FIELD_MODES.items():
            default = type(self).model_fields[field].get_default(call_default_factory=True)
            if getattr(self, field) != default and self.mode not in modes:
                raise ValueError(f"{field} applies to mode {' or '.join(sorted(modes))}")
        needed = {"rate": "rate_per_s", "concurrency": "concurrency", "trace": "trace"}
        if self.mode in needed and getattr(self, needed[self.mode]) is None:
            raise ValueError(f"mode {self.mode} needs {needed[self.mode]}")
        if self.num_requests is not None and self.duration_s is not None:
            raise ValueError("give num_requests or duration_s, not both")
        if self.mode in ("rate", "concurrency") and (
            self.num_requests is None and self.duration_s is None
        ):
            raise ValueError(f"mode {self.mode} needs num_requests or duration_s")
        if self.arrival == "gamma" and self.burstiness is None:
            raise ValueError("arrival gamma needs burstiness (the gamma shape; 1 is Poisson)")
        if self.arrival != "gamma" and self.burstiness is not None:
            raise ValueError(f"burstiness applies to arrival gamma, not {self.arrival}")
        if self.endpoint is not None:
            _check_endpoint(self.endpoint, self.allow_remote_endpoint)
        if self.endpoint_gpus and self.endpoint is None:
            raise ValueError("endpoint_gpus applies to an endpoint")
        if any(g < 0 for g in self.endpoint_gpus) or len(set(self.endpoint_gpus)) < len(
            self.endpoint_gpus
        ):
            raise ValueError("endpoint_gpus: distinct CUDA ordinals (0, 1, ...)")
        return self


def _check_endpoint(endpoint: str, allow_remote: bool) -> None:
    """`http(s)://HOST:PORT/...` with a loopback HOST unless remote hosts are allowed."""
    parts = urlsplit(endpoint)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise ValueError(f"endpoint: expected http://127.0.0.1:PORT/v1, got {endpoint!r}")
    if allow_remote or parts.hostname == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"endpoint: {parts.hostname} is not a loopback address; the server's energy is "
            "measured on this host (set allow_remote_endpoint: true if it runs here)"
        )
