"""The machine an experiment ran on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class GpuInfo(BaseModel):
    """One accelerator as the process saw it at the start."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    index: int
    uuid: str
    name: str
    vram_mb: float | None = None
    compute_capability: str | None = None
    is_mig: bool = False
    parent_uuid: str | None = None
    power_limit_w: float | None = None
    default_power_limit_w: float | None = None
    persistence_mode: bool | None = None
    sm_clock_mhz: float | None = None
    memory_clock_mhz: float | None = None
    temperature_c: float | None = None


class EnvironmentMetadata(BaseModel):
    """Host, software and devices; the same shape on every host of a run."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    host: str
    os: str
    python_version: str
    cpu_model: str | None = None
    cpu_count: int | None = None
    cpu_governor: str | None = None
    memory_total_mb: float | None = None
    in_container: bool | None = None
    cuda_available: bool = False
    cuda_version: str | None = None
    driver_version: str | None = None
    cuda_driver_version: str | None = Field(
        None, description="Newest CUDA version the driver supports (cuda_version: torch's)."
    )
    gpus: list[GpuInfo] = Field(default_factory=list)
    torch_version: str | None = None
    transformers_version: str | None = None
    accelerate_version: str | None = None
    llenergymeasure_version: str | None = None
    summary_line: str = ""
