"""Warnings about the quality of a measurement. Informational: they never block a run."""

from __future__ import annotations

from llenergymeasure.domain.metrics import EnergyMeasurement, MeasurementWarning

SHORT_MEASUREMENT_S = 10.0
LOW_SAMPLE_COUNT = 10


def collect_measurement_warnings(
    *,
    duration_s: float,
    sample_count: int,
    energy: EnergyMeasurement | None,
    energy_requested: bool,
    sampler_errors: dict[str, str] | None = None,
    has_gpu: bool = True,
) -> list[MeasurementWarning]:
    """Every condition that makes the figures less trustworthy, with a remedy."""
    warnings = []
    if duration_s < SHORT_MEASUREMENT_S:
        warnings.append(
            MeasurementWarning(
                code="short_measurement",
                message=f"inference window of {duration_s:.1f} s is under "
                f"{SHORT_MEASUREMENT_S:g} s; counter resolution and start-up dominate",
                remediation="raise prompts.num_prompts or generation.max_new_tokens",
            )
        )
    if sample_count < LOW_SAMPLE_COUNT:
        warnings.append(
            MeasurementWarning(
                code="low_sample_count",
                message=f"only {sample_count} power/thermal samples in the window",
                remediation="lengthen the run or lower measurement.energy.sample_interval_ms",
            )
        )
    if energy is not None and energy.is_estimate:
        warnings.append(
            MeasurementWarning(
                code="energy_estimated",
                message="energy is an estimate (TDP x CPU utilisation), not a measurement: "
                + "; ".join(energy.assumptions),
                remediation="run where RAPL (/sys/class/powercap) or NVML is readable, "
                "or set measurement.energy.cpu_tdp_w to the CPU's real TDP",
            )
        )
    if energy is None and energy_requested:
        warnings.append(
            MeasurementWarning(
                code="energy_unavailable",
                message="no energy source could be read; energy fields are null",
                remediation="check measurement.energy.backend and device permissions",
            )
        )
    if not has_gpu:
        warnings.append(
            MeasurementWarning(
                code="no_gpu",
                message="no GPU in this process: accelerator memory, GPU utilisation, "
                "temperature and throttling are not measured (null)",
                remediation="run on an NVIDIA GPU for device-level readings",
            )
        )
    for source, error in (sampler_errors or {}).items():
        warnings.append(
            MeasurementWarning(
                code="sampler_error",
                message=f"{source} readings failed during the window ({error}); "
                "those samples are missing",
                remediation="check driver and permissions; the window's energy is unaffected",
            )
        )
    return warnings
