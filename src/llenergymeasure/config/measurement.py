"""How the inference window is measured: energy source, warmup, baseline, thermal floor.

Units are in the field names; every section forbids unknown fields (`config/base.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llenergymeasure.config.base import Section
from llenergymeasure.defaults import (
    DEFAULT_SOCKET_TDP_W,
    DEFAULT_THREADS_PER_SOCKET,
    GPU_THERMAL_FLOOR_S,
    SAMPLE_INTERVAL_MS,
)

EnergyBackendChoice = Literal["auto", "nvml", "rapl", "estimate", "none"]


class EnergyConfig(Section):
    """Energy source and sampling."""

    backend: EnergyBackendChoice = Field(
        "auto", description="auto picks nvml, then rapl, then the labelled CPU estimate."
    )
    sample_interval_ms: int = Field(SAMPLE_INTERVAL_MS, ge=1, le=60_000)
    cpu_tdp_w: float | None = Field(
        None,
        gt=0,
        le=5_000,
        description="Full-load power of all logical cores the host sees, for the estimate; "
        "null: from the CPU model's TDP (bundled table), else "
        f"{DEFAULT_SOCKET_TDP_W:g} W per {DEFAULT_THREADS_PER_SOCKET} threads; the "
        "assumption recorded in the result.",
    )


class WarmupConfig(Section):
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


class BaselineConfig(Section):
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


class TimeseriesConfig(Section):
    """The per-process parquet sidecar of power, temperature and memory samples."""

    enabled: bool = True
    resample_hz: float = Field(1.0, ge=0, le=1_000, description="0 keeps every sample.")


class ThermalFloorConfig(Section):
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


class MeasurementConfig(Section):
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
    phase_split: Literal["none", "subtraction"] = Field(
        "none",
        description="subtraction: after the window, a second window runs the same prompts "
        "with max_new_tokens 1 (optimum-benchmark's prefill pass); prefill energy is that "
        "window's, decode energy the main window's less it (`phase_subtraction` in the "
        "result). Offline only; the main window's figures are unchanged.",
    )
