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
from llenergymeasure.defaults import (
    DEFAULT_SOCKET_TDP_W,
    DEFAULT_THREADS_PER_SOCKET,
    GPU_THERMAL_FLOOR_S,
    RESULTS_DIR,
)

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


class QuantizationConfig(_Section):
    """Weights stored in fewer bits (docs/deployment.md, "Quantization").

    bitsandbytes needs CUDA (4-bit NF4 or 8-bit LLM.int8); torchao's int8 weight-only
    runs on the CPU too (its int4 kernels need CUDA).
    """

    method: Literal["none", "bitsandbytes", "torchao"] = "none"
    bits: Literal[4, 8] | None = Field(
        None, description="Bits per weight; required with a method, null with none."
    )
    compute_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="The dtype bitsandbytes' 4-bit layers compute in; auto: model.dtype. "
        "Other methods compute in model.dtype.",
    )

    @model_validator(mode="after")
    def _bits_with_method(self) -> QuantizationConfig:
        if self.method == "none" and self.bits is not None:
            raise ValueError("bits applies to a quantization method; method is none")
        if self.method != "none" and self.bits is None:
            raise ValueError(f"method {self.method} needs bits: 4 or 8")
        if self.compute_dtype != "auto" and not (self.method == "bitsandbytes" and self.bits == 4):
            raise ValueError(
                "compute_dtype applies to bitsandbytes 4-bit only; other methods compute "
                "in model.dtype"
            )
        return self


class TorchCompileConfig(_Section):
    """`model.torch_compile`: `false`, `true` or `{mode: ..., backend: ...}` in a config file.

    `false` is `{enabled: false}`; `true` and a mapping without `enabled` turn it on.
    """

    enabled: bool = False
    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    backend: Literal["inductor", "cudagraphs", "aot_eager", "eager"] = Field(
        "inductor",
        description="torch.compile's backend; aot_eager and eager trace the model without "
        "generating kernels (cheap, for checking the path).",
    )

    @model_validator(mode="after")
    def _mode_needs_inductor(self) -> TorchCompileConfig:
        if self.mode != "default" and self.backend != "inductor":
            raise ValueError(
                f"mode {self.mode} applies to the inductor backend, not {self.backend}"
            )
        return self


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
    quantization: QuantizationConfig = QuantizationConfig()
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto",
        description="The attention kernel; auto: transformers' choice (sdpa where the model "
        "supports it). flash_attention_2 needs a CUDA device and the flash_attn package.",
    )
    torch_compile: TorchCompileConfig = Field(
        TorchCompileConfig(),
        description="false, true or {mode, backend}: compile the model's forward before "
        "warmup; the compile time is recorded as compile_s, outside the energy window.",
    )

    @field_validator("torch_compile", mode="before")
    @classmethod
    def _compile_shorthand(cls, value: object) -> object:
        """`true`/`false` and a mapping without `enabled` (which means on)."""
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, dict) and "enabled" not in value:
            return {"enabled": True, **value}
        return value


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
    batching: Literal["static", "sorted", "token_budget"] = Field(
        "static",
        description="static: batches of batch_size in prompt order; sorted: the same after "
        "sorting each process's prompts by token length, longest first (less padding); "
        "token_budget: sorted, then each batch takes prompts while its rows x longest prompt "
        "stay within max_batch_tokens (and its rows within batch_size).",
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=1,
        le=16_777_216,
        description="token_budget only: the most padded prompt positions (rows x longest "
        "prompt) one batch may hold.",
    )
    cache_implementation: Literal["dynamic", "static"] = Field(
        "dynamic",
        description="The KV cache: dynamic grows with the sequence; static is allocated "
        "once for prompt + max_new_tokens (fixed shapes, what torch_compile wants).",
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> GenerationConfig:
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens ({self.min_new_tokens}) exceeds "
                f"max_new_tokens ({self.max_new_tokens})"
            )
        return self

    @model_validator(mode="after")
    def _budget_with_token_budget(self) -> GenerationConfig:
        if self.batching == "token_budget" and self.max_batch_tokens is None:
            raise ValueError("batching token_budget needs max_batch_tokens")
        if self.batching != "token_budget" and self.max_batch_tokens is not None:
            raise ValueError(
                f"max_batch_tokens applies to batching token_budget, not {self.batching}"
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
        "null: from the CPU model's TDP (bundled table), else "
        f"{DEFAULT_SOCKET_TDP_W:g} W per {DEFAULT_THREADS_PER_SOCKET} threads; the "
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
        None,
        ge=0,
        le=3_600,
        description=f"sleep only; null: {GPU_THERMAL_FLOOR_S:g} s on a GPU, 0 on the CPU.",
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


class ParallelConfig(_Section):
    """How one experiment's processes and GPUs hold the model (docs/deployment.md, "Parallelism").

    `data` groups each run their own share of the prompts on a copy of the model; a group
    is `tensor` processes that split every layer between them (transformers' `tp_plan`),
    and each process holds `pipeline` GPUs over which its layers are placed in turn
    (`device_map`, CUDA only). Processes: data x tensor; GPUs: data x tensor x pipeline.
    """

    data: int = Field(1, ge=1, le=4_096, description="Model copies, each with its own prompts.")
    tensor: int = Field(1, ge=1, le=64, description="Processes that split each layer.")
    pipeline: int = Field(1, ge=1, le=64, description="GPUs of one process, layers in turn.")

    @model_validator(mode="after")
    def _one_split_per_process(self) -> ParallelConfig:
        if self.tensor > 1 and self.pipeline > 1:
            raise ValueError(
                "tensor and pipeline cannot both exceed 1: transformers does not combine "
                "tp_plan with a device_map; choose one way to split"
            )
        return self

    @property
    def processes(self) -> int:
        """Worker processes: data x tensor."""
        return self.data * self.tensor


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
        "cores); more than one are started by accelerate launch. With a parallel section: "
        "parallel.data x parallel.tensor (given or not).",
    )
    parallel: ParallelConfig = ParallelConfig()
    measurement: MeasurementConfig = MeasurementConfig()
    results_dir: Path = Field(
        RESULTS_DIR, strict=False, description="Results root: raw/, aggregated/, exports/."
    )
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
        knobs = transformers_only_knobs(self) if self.engine != "transformers" else []
        if knobs:
            raise ValueError(
                f"{knobs[0]} is a knob of engine transformers; engine {self.engine} does not "
                "honour it"
            )
        return self

    @model_validator(mode="after")
    def _processes_match_parallel(self) -> ExperimentConfig:
        """`processes` and `parallel` name one count: either gives the other, both must agree.

        Without a parallel section, `processes: N` is N data-parallel copies; with one that
        leaves out `data`, `processes` / `tensor` of them.
        """
        parallel = self.parallel
        if "processes" not in self.model_fields_set:
            self.__dict__["processes"] = parallel.processes
        elif "data" not in parallel.model_fields_set:
            if self.processes % parallel.tensor:
                raise ValueError(
                    f"processes: {self.processes} cannot form tensor-parallel groups of "
                    f"{parallel.tensor} (parallel.tensor)"
                )
            data = self.processes // parallel.tensor
            if data != parallel.data:
                self.__dict__["parallel"] = parallel.model_copy(update={"data": data})
        elif self.processes != parallel.processes:
            raise ValueError(
                f"processes: {self.processes} disagrees with parallel (data {parallel.data} x "
                f"tensor {parallel.tensor} = {parallel.processes} processes); give one of them"
            )
        return self

    def with_processes(self, count: int) -> ExperimentConfig:
        """The same config run by `count` processes (a launch of that world size).

        The data-parallel groups follow: `count` / parallel.tensor.

        Raises:
            ValueError: `count` is not a multiple of parallel.tensor.

        """
        tensor = self.parallel.tensor
        if count % tensor:
            raise ValueError(
                f"{count} processes cannot form tensor-parallel groups of {tensor} "
                "(parallel.tensor)"
            )
        data = count // tensor
        parallel = ParallelConfig(data=data, tensor=tensor, pipeline=self.parallel.pipeline)
        return self.model_copy(update={"processes": count, "parallel": parallel})

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


def transformers_only_knobs(config: ExperimentConfig) -> list[str]:
    """The deployment knobs set away from their defaults that only engine transformers runs."""
    knobs = {
        "generation.batching": config.generation.batching != "static",
        "generation.cache_implementation": config.generation.cache_implementation != "dynamic",
        "model.torch_compile": config.model.torch_compile.enabled,
        "model.attn_implementation": config.model.attn_implementation != "auto",
    }
    return [name for name, set_away in knobs.items() if set_away]
