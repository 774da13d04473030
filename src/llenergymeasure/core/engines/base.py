"""The seam between the measured lifecycle and an inference engine.

The lifecycle (`core/lifecycle.py`) is written once; an engine only loads a model,
prepares this process's prompts, runs one warmup iteration on demand and runs the
workload, reporting one record per request. Everything measured around that (idle
baseline, warmup convergence, thermal floor, the energy window, assembly of the result)
is the lifecycle's, so every engine's joules, tokens and latencies are counted the same
way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from llenergymeasure.core.flops import BatchShape, ModelGeometry
from llenergymeasure.domain.deployment import DeploymentRecord, QuantizationRecord
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.domain.load import EngineStep, LoadRun
from llenergymeasure.domain.metrics import LatencySamples, MeasurementWarning
from llenergymeasure.prompts import Prompt


class RequestsDoneFn(Protocol):
    """What an engine calls as requests finish: for progress and live telemetry."""

    def __call__(self, done: int, output_tokens: int | None = None) -> None:
        """`done` requests have finished, with `output_tokens` so far (None: not counted)."""
        ...


@dataclass(frozen=True)
class LoadedModel:
    """What an engine loaded, as the result records it.

    Attributes:
        source: where the weights came from (`models.resolve_model`'s source).
        dtype: the dtype the weights run in (`float32`, `bfloat16`, ...).
        geometry: the decoder's shape for FLOPs; None where the engine cannot tell.
        context_tokens: the model's context length; None where unknown.
        memory_mb: what this process's weights and buffers take as stored; None where
            the engine cannot tell.
        quantization: what quantization did to the weights; None without it.

    """

    source: str | None
    dtype: str
    geometry: ModelGeometry | None
    context_tokens: int | None
    memory_mb: float | None = None
    quantization: QuantizationRecord | None = None


@dataclass
class Workload:
    """The prompts of this process, encoded as the engine runs them.

    `items` are the engine's own units (left-padded batches for `transformers`);
    `truncated` counts prompts that lost their start to fit the context;
    `expected_requests` how many requests the run will serve where that is not one per
    prompt (a `load:` that repeats the prompts), None where it is (or is not known).
    """

    prompts: list[Prompt]
    items: list[Any]
    truncated: int = 0
    expected_requests: int | None = None


@dataclass
class EngineOutput:
    """What a workload produced: one record per request and the timing of each.

    `shapes` are the forward passes the engine ran (for executed FLOPs); `batch_sizes`
    the number of requests each unit of work held; `peak_memory_mb` the device memory
    the engine held at most while it ran (None where it cannot tell); `load_run` the load
    runner's records where requests arrived over time (`load:` modes), None offline;
    `deployment` its knobs as requested and as they took effect (None where the engine
    records none); `engine_latency` is the engine's own timing of the same requests where
    it keeps one (vLLM), beside `latency` on llem's clock; `warnings` are the engine's
    about its measurement.
    """

    requests: list[RequestRecord]
    latency: LatencySamples
    shapes: list[BatchShape] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    peak_memory_mb: float | None = None
    load_run: LoadRun | None = None
    engine_latency: LatencySamples | None = None
    warnings: list[MeasurementWarning] = field(default_factory=list)
    deployment: DeploymentRecord | None = None
    steps: list[EngineStep] = field(default_factory=list)


class Engine(Protocol):
    """An inference engine behind the measured lifecycle.

    `cuda_ordinals` is known before `load` (the idle baseline is measured before the
    model is loaded): every GPU the engine will use, so that its energy covers them all.
    """

    name: str
    device: str
    cuda_ordinals: list[int]

    def load(self) -> LoadedModel:
        """Load the model and whatever it needs to run (tokenizer, engine process)."""
        ...

    def prepare(self, prompts: list[Prompt], max_prompt_tokens: int | None) -> Workload:
        """Encode `prompts`; with `max_prompt_tokens`, keep only each prompt's last tokens."""
        ...

    def warmup_step(self, workload: Workload, max_new_tokens: int) -> Callable[[], float] | None:
        """One warmup iteration on the workload's first unit, returning its latency in ms.

        None when the workload is empty (this process has no prompts).
        """
        ...

    def run(self, workload: Workload, requests_done: RequestsDoneFn) -> EngineOutput:
        """Run every request of the workload; call `requests_done(n, tokens)` as requests finish."""
        ...

    def synchronize(self) -> None:
        """Wait for the engine's queued device work."""
        ...

    def helper_pids(self) -> list[int]:
        """The processes the engine runs in besides this one (its CPU time is the run's)."""
        ...

    def close(self) -> None:
        """Release the model and any engine process."""
        ...
