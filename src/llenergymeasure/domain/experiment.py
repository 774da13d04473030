"""What an experiment writes to disk: manifest, per-process results, aggregate, markers.

Every model carries `schema_version`. Fields added in later versions have defaults, so
older files still load with those fields as None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llenergymeasure.domain.deployment import (
    DeploymentRecord,
    PaddingStats,
    ParallelPlacement,
    ParallelShape,
    QuantizationRecord,
)
from llenergymeasure.domain.device import on_gpu
from llenergymeasure.domain.energy import ComponentEnergy, EnergyBoundary
from llenergymeasure.domain.environment import EnvironmentMetadata
from llenergymeasure.domain.load import LoadSummary
from llenergymeasure.domain.load import RequestRecord as LoadRequestRecord
from llenergymeasure.domain.metrics import (
    DeviceEnergy,
    EnergyBreakdown,
    EnergyMeasurement,
    EnergyMethod,
    ExtendedMetrics,
    FlopsResult,
    LatencySamples,
    LatencyStats,
    MeasurementWarning,
    ThermalThrottleInfo,
    WarmupResult,
)
from llenergymeasure.domain.phase_split import PhaseSubtraction

# 2: energy by component and boundary, the common energy window, a list of readings.
SCHEMA_VERSION = 2
# The most processes one experiment may expect: the bound keeps a damaged manifest from
# asking aggregation to look for millions of files.
MAX_PROCESSES = 100_000

ExperimentStatus = Literal["running", "completed", "failed", "interrupted"]
EnergyScope = Literal["device", "machine"]


class _Stored(BaseModel):
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION


class ExperimentManifest(_Stored):
    """`experiment.json`: what was asked for, written before any worker starts.

    `launcher_host` and `launcher_pid` name the process that created it (`llem run`, or
    rank 0 of workers started without it), so that an experiment whose status is still
    `running` can be told apart from one whose run was killed.
    """

    experiment_id: str
    config: dict[str, Any]
    config_hash: str
    expected_num_processes: int = Field(ge=1, le=MAX_PROCESSES)
    launch_command: list[str] | None = None
    versions: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime
    status: ExperimentStatus = "running"
    launcher_host: str | None = None
    launcher_pid: int | None = None
    error: str | None = Field(
        None, description="The line that ended a failed or interrupted run; None otherwise."
    )


class CompletionMarker(BaseModel):
    """`.completed_<i>`: written last; proves `process_<i>.json` is whole."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    process_index: int
    result_sha256: str
    written_at: datetime


class RequestRecord(BaseModel):
    """One prompt as this process ran it; token counts exclude padding."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt_id: str
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    stopped_by_eos: bool


class RawProcessResult(_Stored):
    """`process_<i>.json`: everything one worker measured over its shard.

    `inference_*` is this process's own busy window (its throughput); `energy_window_*`
    the window its energy covers, which stays open until every process has finished
    (schema 1 results have none: their energy covered the busy window).
    """

    experiment_id: str
    process_index: int
    num_processes: int
    host: str
    host_id: str | None = Field(
        None,
        description="The kernel the process ran on (boot:<id>, machine:<id> or "
        "hostname:<name>): machine-level energy and devices are counted once per host_id.",
    )
    pid: int
    config_name: str
    model_name: str
    model_source: str | None = None
    engine: str | None = Field(
        None, description="The inference engine that ran the requests (`engine` in the config)."
    )
    dtype: str | None = None
    device: str | None = None
    trust_remote_code: bool = False
    parallel: ParallelPlacement | None = Field(
        None, description="This process's place in the parallel layout; None in older files."
    )
    quantization: QuantizationRecord | None = Field(
        None, description="What quantization did; None for unquantized weights."
    )
    model_memory_mb: float | None = Field(
        None,
        ge=0,
        description="What this process's share of the weights and buffers takes as stored "
        "(quantized formats at their real size); None where the engine cannot tell.",
    )
    started_at: datetime
    ended_at: datetime
    inference_start_unix_s: float
    inference_end_unix_s: float
    inference_duration_s: float = Field(ge=0)
    num_requests: int = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    tokens_per_second: float | None = Field(
        None, ge=0, description="Output tokens per second of this process's busy window."
    )
    energy_window_start_unix_s: float | None = None
    energy_window_end_unix_s: float | None = None
    energy_window_s: float | None = Field(None, ge=0)
    requests: list[RequestRecord] = Field(default_factory=list)
    energy_method: EnergyMethod = Field("none", description="The headline component's method.")
    energy_readings: list[EnergyMeasurement] = Field(
        default_factory=list, description="What each energy backend read, per device."
    )
    energy_components: list[ComponentEnergy] = Field(default_factory=list)
    energy_boundaries: list[EnergyBoundary] = Field(default_factory=list)
    energy_breakdown: EnergyBreakdown | None = None
    energy_per_output_token_j: float | None = None
    flops: FlopsResult | None = None
    latency: LatencyStats | None = None
    latency_samples: LatencySamples | None = None
    load: LoadSummary | None = Field(
        None,
        description="Requests arriving over time (`load:` modes): rates, latencies, "
        "windows and goodput; None offline.",
    )
    load_requests: list[LoadRequestRecord] = Field(
        default_factory=list,
        description="The load runner's record of each request, times in seconds from the "
        "load's start (`load.start_monotonic_s` on the worker's monotonic clock).",
    )
    engine_latency_samples: LatencySamples | None = Field(
        None,
        description="The engine's own timing of the same requests beside llem's "
        "(`latency_samples`): vLLM's per-request TTFT and end-to-end from its "
        "RequestStateStats, no ITL; null for engines that keep none.",
    )
    warmup: WarmupResult | None = None
    thermal_throttle: ThermalThrottleInfo | None = None
    environment: EnvironmentMetadata | None = None
    extended: ExtendedMetrics | None = None
    sample_interval_ms: int | None = None
    sample_count: int | None = None
    timeseries_path: str | None = Field(
        None, description="Sidecar file name, relative to the experiment directory."
    )
    padding: PaddingStats | None = Field(
        None, description="Padded positions of the window's batches; None in older files."
    )
    deployment: DeploymentRecord | None = Field(
        None, description="Each knob as requested and as it took effect; None in older files."
    )
    phase_subtraction: PhaseSubtraction | None = Field(
        None,
        description="Prefill and decode energy by subtraction of a prefill-only pass "
        "(`measurement.phase_split: subtraction`); None without it.",
    )
    warnings: list[MeasurementWarning] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _schema_1_reading(cls, data: Any) -> Any:
        """Schema 1 kept its one reading in `energy`: it is the list's only entry."""
        if isinstance(data, dict) and "energy" in data and "energy_readings" not in data:
            legacy = data["energy"]
            data = {**data, "energy_readings": [legacy] if legacy is not None else []}
        return data

    @model_validator(mode="after")
    def _windows_end_after_they_start(self) -> RawProcessResult:
        """A stored window that ends before it starts was damaged or forged: refuse it."""
        ends = [(self.inference_start_unix_s, self.inference_end_unix_s)]
        if (
            self.energy_window_start_unix_s is not None
            and self.energy_window_end_unix_s is not None
        ):
            ends.append((self.energy_window_start_unix_s, self.energy_window_end_unix_s))
        if any(end < start for start, end in ends):
            raise ValueError("a window ends before it starts")
        return self

    @property
    def counts_requests(self) -> bool:
        """Whether this process's requests and tokens count in the aggregate.

        Every rank of a tensor-parallel group runs the same requests; only rank 0's count.
        """
        return self.parallel is None or self.parallel.counts_requests

    @property
    def runs_on_gpu(self) -> bool:
        """True for a process whose model ran on a CUDA device."""
        return on_gpu(self.device)

    @property
    def devices(self) -> list[DeviceEnergy]:
        """Every device of every reading."""
        return [d for reading in self.energy_readings for d in reading.devices]


class AggregationInfo(BaseModel):
    """How the processes were combined and what was verified."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    method: str
    num_processes: int
    expected_num_processes: int
    partial: bool = False
    missing_processes: list[int] = Field(default_factory=list)
    temporal_overlap_verified: bool
    gpu_attribution_verified: bool
    parallel_groups_verified: bool | None = Field(
        None,
        description="The ranks of each tensor-parallel group ran the same requests and "
        "tokens (counted once); None in older files.",
    )

    @property
    def processes_label(self) -> str:
        """`4`, or `3 of 4 (partial)` for an aggregate of fewer processes than expected."""
        if not self.partial:
            return str(self.num_processes)
        return f"{self.num_processes} of {self.expected_num_processes} (partial)"

    warnings: list[str] = Field(default_factory=list)


class ProcessSummary(BaseModel):
    """One process's share of an aggregate, for per-process views."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    process_index: int
    host: str
    device_ids: list[str] = Field(default_factory=list)
    data_group: int | None = Field(None, description="None in older files.")
    counts_requests: bool = Field(
        True,
        description="False for a tensor-parallel rank whose group's tokens are counted from "
        "its rank 0.",
    )
    output_tokens: int
    energy_j: float | None = None
    tokens_per_second: float | None = None
    energy_scope: EnergyScope | None = Field(
        None,
        description="device: energy_j is this process's devices; machine: a host-level "
        "figure shared by the host's processes (counted once). None in older files.",
    )


class AggregatedResult(_Stored):
    """`results/aggregated/<id>.json`: the experiment as one set of figures."""

    experiment_id: str
    config_name: str
    model_name: str
    aggregation: AggregationInfo
    hosts: list[str]
    parallel: ParallelShape | None = None
    quantization: QuantizationRecord | None = None
    model_memory_mb: float | None = Field(
        None,
        ge=0,
        description="One copy of the model as stored: the sum over the ranks of data group 0.",
    )
    inference_start_unix_s: float
    inference_end_unix_s: float
    wall_window_s: float = Field(description="From the first start to the last end.")
    num_requests: int
    input_tokens: int
    output_tokens: int
    avg_tokens_per_second: float | None = Field(None, description="Mean of per-process tokens/s.")
    total_tokens_per_second: float | None = Field(
        None, description="All output tokens over the wall window."
    )
    energy_method: EnergyMethod = "none"
    energy_components: list[ComponentEnergy] = Field(default_factory=list)
    energy_boundaries: list[EnergyBoundary] = Field(default_factory=list)
    energy_breakdown: EnergyBreakdown | None = None
    energy_per_output_token_j: float | None = None
    total_flops: float | None = Field(None, description="Equal to `flops_useful`.")
    flops_useful: float | None = Field(None, description="Sum of the processes' useful FLOPs.")
    flops_executed: float | None = Field(None, description="Sum of the processes' executed FLOPs.")
    flops_method: str | None = None
    latency: LatencyStats | None = None
    thermal_throttle: ThermalThrottleInfo | None = None
    environments: dict[str, EnvironmentMetadata] = Field(default_factory=dict)
    extended: ExtendedMetrics | None = None
    processes: list[ProcessSummary] = Field(default_factory=list)
    padding: PaddingStats | None = Field(
        None,
        description="The processes' padded and real positions summed, shares of the sums; "
        "None where any process has none.",
    )
    deployment: DeploymentRecord | None = Field(
        None, description="The deployment as the first process recorded it (same config)."
    )
    timeseries_paths: list[str] = Field(default_factory=list)
    load: LoadSummary | None = Field(
        None,
        description="The load run of a `load:` experiment (one process: its own summary); "
        "None offline.",
    )
    phase_subtraction: PhaseSubtraction | None = Field(
        None,
        description="The processes' prefill-pass subtraction combined "
        "(`PhaseSubtraction.combine`); None without it, or where it does not add up (an "
        "aggregation warning says why).",
    )
    warnings: list[MeasurementWarning] = Field(default_factory=list)
    created_at: datetime | None = Field(
        None,
        description="When the experiment was created (its manifest's created_at); in files "
        "of older versions, when the aggregate was written.",
    )
    aggregated_at: datetime | None = Field(
        None, description="When this aggregate was written; None in older files."
    )


class ExperimentResult(BaseModel):
    """An experiment as `llem results show` presents it: manifest plus aggregate."""

    manifest: ExperimentManifest
    aggregated: AggregatedResult | None = None
