"""Experiment configuration: the single place where every default lives.

Units are in the field names. Every model forbids unknown fields, so a typo in a
YAML file is reported instead of silently ignored.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from llenergymeasure.config.engines import VllmConfig

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# numpy's seed is a 32-bit unsigned integer; torch's and Python's take any of these.
MAX_SEED = 2**32 - 1
# Above any vocabulary size a model has; the bound keeps the value a machine integer.
MAX_TOP_K = 10_000_000


class _Section(BaseModel):
    """Strict types: a YAML boolean (`yes`, `on`) is not a number, `.nan` not a value.

    `Path` fields accept strings (they are written as strings in JSON and YAML).
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False
    )


class ModelConfig(_Section):
    """Which model to load and how."""

    name: str = Field(
        min_length=1,
        description="HF id, local directory, or builtin alias (builtin:smollm2-135m, "
        "builtin:tiny-llama).",
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto", description="auto: bfloat16 on a GPU that supports it, float32 on CPU."
    )
    trust_remote_code: bool = Field(
        False, description="Run code shipped with the model. Recorded in results when true."
    )
    revision: str | None = None


class PromptsConfig(_Section):
    """Where prompts come from and which of them run."""

    source: str = Field(
        "builtin:mixed",
        min_length=1,
        description="builtin:<set>, or a path to a .jsonl or .txt file.",
    )
    num_prompts: int | None = Field(
        64, ge=1, le=1_000_000, description="How many prompts to run; null: all of them."
    )
    order: Literal["source", "shuffled"] = "source"
    seed: int = Field(
        0, ge=0, le=MAX_SEED, description="Seed of the shuffle when order is shuffled."
    )
    chat_template: bool = Field(
        True, description="Wrap each prompt in the tokenizer's chat template when it has one."
    )
    truncate: bool = Field(
        False,
        description="A prompt longer than the model's context less generation.max_new_tokens "
        "loses its start (left truncation, keeping the question and the chat template's "
        "assistant turn at its end); the result warns how many were cut. false: such a "
        "prompt is refused before anything runs.",
    )


class GenerationConfig(_Section):
    """Decoding settings passed to `generate`."""

    max_new_tokens: int = Field(64, ge=1, le=32_768)
    min_new_tokens: int = Field(0, ge=0, le=32_768)
    batch_size: int = Field(1, ge=1, le=4_096)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0, le=100)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int | None = Field(None, ge=1, le=MAX_TOP_K)

    @model_validator(mode="after")
    def _min_le_max(self) -> GenerationConfig:
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens ({self.min_new_tokens}) exceeds "
                f"max_new_tokens ({self.max_new_tokens})"
            )
        return self


class EnergyConfig(_Section):
    """Energy source and sampling."""

    backend: Literal["auto", "nvml", "rapl", "estimate", "none"] = Field(
        "auto", description="auto picks nvml, then rapl, then the labelled CPU estimate."
    )
    sample_interval_ms: int = Field(100, ge=1, le=60_000)
    cpu_tdp_w: float | None = Field(
        None,
        gt=0,
        le=5_000,
        description="Full-load power of all logical cores the host sees, for the estimate; "
        "null: from the CPU model's TDP (bundled table) or a per-socket default, the "
        "assumption recorded in the result.",
    )


class WarmupConfig(_Section):
    """Warmup until the latency of a repeated batch is stable."""

    enabled: bool = True
    min_prompts: int = Field(3, ge=0, le=10_000)
    max_prompts: int = Field(20, ge=1, le=10_000)
    window_size: int = Field(3, ge=2, le=1_000)
    cv_threshold: float = Field(0.1, gt=0, le=10)
    max_new_tokens: int = Field(16, ge=1, le=32_768)

    @model_validator(mode="after")
    def _bounds(self) -> WarmupConfig:
        if self.min_prompts > self.max_prompts:
            raise ValueError(
                f"min_prompts ({self.min_prompts}) exceeds max_prompts ({self.max_prompts})"
            )
        return self


class BaselineConfig(_Section):
    """Idle power measured before the model is loaded."""

    enabled: bool = True
    duration_s: float = Field(5.0, gt=0, le=3_600)
    cache_ttl_s: float = Field(3_600.0, ge=0, le=7 * 86_400)
    max_busy_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="A baseline during which other processes kept more than this share of "
        "the host's cores busy is used for its run but not cached.",
    )


class TimeseriesConfig(_Section):
    """The per-process parquet sidecar of power, temperature and memory samples."""

    enabled: bool = True
    resample_hz: float = Field(1.0, ge=0, le=1_000, description="0 keeps every sample.")


class ThermalFloorConfig(_Section):
    """The wait between warmup and the window, so runs start at a comparable temperature."""

    mode: Literal["sleep", "stable_temperature"] = Field(
        "sleep",
        description="sleep: wait `seconds`; stable_temperature: poll the GPU temperature "
        "every second until its range over `stable_for_s` is within `tolerance_c`.",
    )
    seconds: float | None = Field(
        None, ge=0, le=3_600, description="sleep only; null: 60 s on a GPU, 0 on the CPU."
    )
    tolerance_c: float = Field(1.0, gt=0, le=50)
    stable_for_s: float = Field(10.0, gt=0, le=3_600)
    timeout_s: float = Field(300.0, gt=0, le=86_400)

    @model_validator(mode="after")
    def _consistent(self) -> ThermalFloorConfig:
        if self.mode == "stable_temperature" and self.seconds is not None:
            raise ValueError("seconds applies to mode sleep; stable_temperature uses timeout_s")
        if self.stable_for_s > self.timeout_s:
            raise ValueError(
                f"stable_for_s ({self.stable_for_s:g}) exceeds timeout_s ({self.timeout_s:g})"
            )
        return self


class MeasurementConfig(_Section):
    """How the inference window is measured."""

    energy: EnergyConfig = EnergyConfig()
    warmup: WarmupConfig = WarmupConfig()
    baseline: BaselineConfig = BaselineConfig()
    thermal_floor: ThermalFloorConfig = ThermalFloorConfig()
    timeseries: TimeseriesConfig = TimeseriesConfig()
    pue: float | None = Field(
        None,
        ge=1,
        le=10,
        description="The facility's power usage effectiveness; gives the `facility` energy "
        "boundary (node energy x PUE). null: no facility figure.",
    )
    grid_intensity_g_per_kwh: float | None = Field(
        None,
        ge=0,
        le=5_000,
        description="Carbon intensity of the grid (gCO2e per kWh); with pue, gives the "
        "facility's CO2e. null: no CO2e figure.",
    )


# Engines whose runner serves requests arriving over time; every other serves `offline`.
LOAD_SERVING_ENGINES = frozenset({"transformers-cb"})
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


class SloConfig(_Section):
    """Latency objectives a request must meet to count towards goodput (unset: not checked)."""

    ttft_ms: float | None = Field(None, gt=0, le=3_600_000, description="Arrival to first token.")
    tpot_ms: float | None = Field(
        None, gt=0, le=3_600_000, description="Mean time per output token after the first."
    )


class LoadConfig(_Section):
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


class ContinuousBatchingConfig(_Section):
    """`engine: transformers-cb`: transformers' own continuous batching (a paged KV cache).

    Requests join and leave the running batch at every step, so none waits for the
    longest of a static batch. The cache sizes have no default on the CPU in transformers
    (it would size them from host memory); null here sizes them to the workload there.
    """

    max_requests_per_batch: int = Field(
        32, ge=1, le=4_096, description="Requests in one forward step at most."
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=16,
        le=1_048_576,
        description="Tokens in one forward step at most. null: transformers' choice on a GPU; "
        "on the CPU the longest prompt, at least 256.",
    )
    kv_cache_tokens: int | None = Field(
        None,
        ge=16,
        le=100_000_000,
        description="Tokens the paged KV cache holds. null: sized from free memory on a GPU; "
        "on the CPU max_requests_per_batch x (longest prompt + max_new_tokens).",
    )
    page_size: int = Field(64, ge=4, le=4_096, description="Tokens per cache page.")
    scheduler: Literal["fifo", "prefill_first"] = Field(
        "fifo", description="fifo: in arrival order; prefill_first: new requests before decodes."
    )


# The config section of each engine's own options; naming one for another engine is an error.
ENGINE_SECTIONS = {"transformers-cb": "transformers_cb", "vllm": "vllm"}
# What bounds the running batch of each engine that schedules requests itself.
ENGINE_BATCH_LIMITS = {
    "transformers-cb": "transformers_cb.max_requests_per_batch",
    "vllm": "vllm.max_num_seqs",
}


class ExperimentConfig(_Section):
    """One experiment: a model, a workload and a deployment configuration."""

    name: str = Field(pattern=NAME_PATTERN, description="Used in the experiment id.")
    model: ModelConfig
    engine: Literal["transformers", "transformers-cb", "vllm"] = Field(
        "transformers",
        description="The inference engine: transformers (static batches through generate), "
        "transformers-cb (transformers' continuous batching), vllm (vLLM's offline engine).",
    )
    transformers_cb: ContinuousBatchingConfig | None = Field(
        None, description="Options of engine transformers-cb; null: its defaults."
    )
    vllm: VllmConfig | None = Field(None, description="Options of engine vllm; null: its defaults.")
    prompts: PromptsConfig = PromptsConfig()
    generation: GenerationConfig = GenerationConfig()
    processes: int = Field(
        1,
        ge=1,
        le=4_096,
        description="Worker processes, one per GPU (on the CPU: gloo processes sharing the "
        "cores); more than one are started by accelerate launch.",
    )
    measurement: MeasurementConfig = MeasurementConfig()
    results_dir: Path = Field(Path("results"), strict=False)
    seed: int = Field(
        42,
        ge=0,
        le=MAX_SEED,
        description="Seeds torch, numpy and Python's random for the run, and the load's "
        "arrival times.",
    )
    load: LoadConfig = LoadConfig()

    @field_validator("load")
    @classmethod
    def _engine_serves_the_load(cls, load: LoadConfig, info: ValidationInfo) -> LoadConfig:
        if "engine" not in info.data:  # the engine itself is invalid: one error, not two
            return load
        engine = info.data["engine"]
        # With an endpoint the server's own engine serves the requests.
        if load.mode != "offline" and load.endpoint is None and engine not in LOAD_SERVING_ENGINES:
            raise ValueError(
                f"mode {load.mode}: engine {engine} serves mode offline only; requests "
                f"arriving over time need engine {' or '.join(sorted(LOAD_SERVING_ENGINES))} "
                "or an endpoint"
            )
        return load

    @model_validator(mode="after")
    def _engine_options(self) -> ExperimentConfig:
        for engine, section in ENGINE_SECTIONS.items():
            if getattr(self, section) is not None and self.engine != engine:
                raise ValueError(
                    f"{section} holds options of engine {engine}, but engine is {self.engine}"
                )
        if self.load.mode != "offline" and self.processes != 1:
            raise ValueError(f"load.mode {self.load.mode} runs in one process (processes: 1)")
        if self.load.endpoint is not None:
            _check_endpoint_options(self)
            return self
        if self.engine != "transformers" and self.generation.batch_size != 1:
            raise ValueError(
                f"generation.batch_size sets static batches (engine transformers); engine "
                f"{self.engine} schedules requests itself: use "
                f"{ENGINE_BATCH_LIMITS[self.engine]}"
            )
        if self.engine == "transformers-cb" and self.generation.min_new_tokens:
            raise ValueError(
                "generation.min_new_tokens: transformers' continuous batching drops the "
                "minimum-length rule, so it would be ignored; use engine transformers"
            )
        return self

    def vllm_options(self) -> VllmConfig:
        """The vLLM engine's options: its section, or the defaults without one."""
        return self.vllm if self.vllm is not None else VllmConfig()


def _check_endpoint_options(config: ExperimentConfig) -> None:
    """Refuse what an endpoint's server decides itself, instead of ignoring it."""
    ignored = {
        "engine": config.engine != "transformers"
        or config.transformers_cb is not None
        or config.vllm is not None,
        "generation.batch_size": config.generation.batch_size != 1,
        "generation.min_new_tokens": config.generation.min_new_tokens != 0,
        "generation.top_k": config.generation.top_k is not None,
        "prompts.truncate": config.prompts.truncate,
    }
    named = [field for field, given in ignored.items() if given]
    if named:
        raise ValueError(
            f"{', '.join(named)}: the endpoint's server decides this (its engine, batching, "
            "context), so llem cannot apply it; leave it unset with load.endpoint"
        )
