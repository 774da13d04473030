"""Experiment configuration: the experiment and its model, prompts and generation.

Units are in the field names. Every model forbids unknown fields, so a typo in a
YAML file is reported instead of silently ignored. A field's default is on the field;
`defaults.py` holds those that no field has (`llem config show` prints both).
The measurement sections are in `config/measurement.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from llenergymeasure.config.base import Section
from llenergymeasure.config.deployment import ParallelConfig, QuantizationConfig, TorchCompileConfig
from llenergymeasure.config.engines import (
    ENGINE_BATCH_LIMITS,
    ENGINE_SECTIONS,
    ContinuousBatchingConfig,
    VllmConfig,
)
from llenergymeasure.config.load import LOAD_SERVING_ENGINES, LoadConfig
from llenergymeasure.config.measurement import MeasurementConfig
from llenergymeasure.defaults import (
    RESULTS_DIR,
)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
# numpy's seed is a 32-bit unsigned integer; torch's and Python's take any of these.
MAX_SEED = 2**32 - 1
# Above any vocabulary size a model has; the bound keeps the value a machine integer.
MAX_TOP_K = 10_000_000


class ModelConfig(Section):
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


class PromptsConfig(Section):
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


class GenerationConfig(Section):
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


class ExperimentConfig(Section):
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
                f"arriving over time need engine {', '.join(sorted(LOAD_SERVING_ENGINES))}, "
                "or load.endpoint"
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
    def _phase_split_runs(self) -> ExperimentConfig:
        """The subtraction method reruns the offline workload; refuse where it cannot."""
        if self.measurement.phase_split != "subtraction":
            return self
        if self.load.mode != "offline":
            problem = f"load.mode {self.load.mode} (requests arriving over time"
            problem += ", to an endpoint)" if self.load.endpoint is not None else ")"
            raise ValueError(
                f"measurement.phase_split subtraction reruns an offline workload with one "
                f"output token, not {problem}; use load.mode offline, or the attributed "
                "split the load summary reports"
            )
        if self.generation.max_new_tokens == 1:
            raise ValueError(
                "measurement.phase_split subtraction needs generation.max_new_tokens above 1: "
                "with 1 the full pass is the prefill pass and there is no decode to split off"
            )
        caching = {
            "vllm": self.engine == "vllm" and self.vllm_options().enable_prefix_caching,
            "transformers_cb": self.transformers_cb is not None
            and self.transformers_cb.enable_prefix_caching,
        }
        for section, on in caching.items():
            if on:
                raise ValueError(
                    f"measurement.phase_split subtraction with {section}.enable_prefix_caching: "
                    "the prefill pass would read its prompts' cache from the full pass; turn it "
                    "off"
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

    def running_batch_limit(self) -> int | None:
        """The most requests the engine runs together (`ENGINE_BATCH_LIMITS`).

        Its section's value, or the default without one; None for static batches, and for
        an endpoint (its server's).
        """
        if self.load.endpoint is not None:
            return None
        limits = {
            "transformers-cb": (
                self.transformers_cb or ContinuousBatchingConfig()
            ).max_requests_per_batch,
            "vllm": self.vllm_options().max_num_seqs,
        }
        return limits.get(self.engine)


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
