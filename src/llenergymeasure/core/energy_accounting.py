"""From the window's readings and the baselines to components, boundaries and the headline.

A process on GPUs whose GPUs no backend measured records a `gpu` component with null
energy (method `none`) and a `gpu_energy_unavailable` warning naming the reason, so every
boundary that needs the GPUs is null: its CPU energy stays CPU energy (`cpu_dram`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llenergymeasure.config.measurement import MeasurementConfig
from llenergymeasure.core.baseline import Baselines
from llenergymeasure.domain.energy import ComponentEnergy, EnergyBoundary, boundaries_of, headline
from llenergymeasure.domain.metrics import EnergyBreakdown, EnergyMeasurement, MeasurementWarning


@dataclass(frozen=True)
class EnergyAccount:
    """A process's energy by component and boundary, its headline, and what to warn about."""

    components: list[ComponentEnergy]
    boundaries: list[EnergyBoundary]
    breakdown: EnergyBreakdown
    warnings: list[MeasurementWarning]


def account_energy(
    readings: Sequence[EnergyMeasurement],
    baselines: Baselines,
    *,
    window_s: float,
    window_start_unix_s: float,
    output_tokens: int,
    gpus_expected: bool,
    gpu_problem: str | None,
    config: MeasurementConfig,
) -> EnergyAccount:
    """Components from the readings, baselines subtracted over `window_s`, every boundary."""
    components = [
        _component(reading, kind, baselines, window_s, window_start_unix_s)
        for reading in readings
        for kind in dict.fromkeys(d.kind for d in reading.devices)
    ]
    warnings = list(baselines.warnings)
    if gpus_expected and not any(c.component == "gpu" for c in components):
        components.insert(0, _unmeasured_gpu(window_s))
        warnings.append(_gpu_unavailable(gpu_problem))
    warnings += [_clipped(c) for c in components if c.above_idle_clipped]
    boundaries = boundaries_of(
        components,
        output_tokens,
        gpus_expected=gpus_expected,
        pue=config.pue,
        grid_intensity_g_per_kwh=config.grid_intensity_g_per_kwh,
    )
    breakdown = headline(components, boundaries, gpus_expected=gpus_expected, window_s=window_s)
    return EnergyAccount(components, boundaries, breakdown, warnings)


def _component(
    reading: EnergyMeasurement,
    kind: str,
    baselines: Baselines,
    window_s: float,
    window_start_unix_s: float,
) -> ComponentEnergy:
    devices = [d for d in reading.devices if d.kind == kind]
    energies = [d.energy_j for d in devices]
    baseline = baselines.of(kind)
    module = any(d.energy_scope == "module" for d in devices)
    return ComponentEnergy.measured(
        kind,  # type: ignore[arg-type]
        reading.method,
        devices[0].scope,
        [d.device_id for d in devices],
        None if None in energies else float(sum(energies)),  # type: ignore[arg-type]
        window_s,
        baseline_power_w=baseline.power_w,
        baseline_std_w=baseline.std_w,
        baseline_method=baseline.method,
        baseline_source=baseline.source,
        baseline_duration_s=baseline.duration_s,
        baseline_age_s=baseline.age_s(window_start_unix_s),
        energy_scope="module" if module else ("gpu" if kind == "gpu" else None),
    )


def _unmeasured_gpu(window_s: float) -> ComponentEnergy:
    return ComponentEnergy(
        component="gpu", method="none", scope="device", energy_j=None, window_s=window_s
    )


def _gpu_unavailable(reason: str | None) -> MeasurementWarning:
    return MeasurementWarning(
        code="gpu_energy_unavailable",
        message="this process runs on a GPU whose energy was not measured "
        f"({reason or 'no GPU energy source'}): GPU energy and every boundary with the GPU "
        "in it are null; CPU energy is reported as CPU energy only",
        remediation="make NVML readable (driver, permissions), or set "
        "measurement.energy.backend: nvml to stop instead of running unmeasured",
    )


def _clipped(component: ComponentEnergy) -> MeasurementWarning:
    return MeasurementWarning(
        code="above_idle_clipped",
        message=f"{component.component} energy above idle was clipped to 0 J: the window's "
        f"{component.energy_j:.2f} J are below the idle baseline's "
        f"{component.baseline_energy_j:.2f} J ({component.baseline_power_w:.2f} W x "
        f"{component.window_s:.2f} s, {component.baseline_method})",
        remediation="measure the baseline on a quiet machine (or with baseline.cache_ttl_s: 0 "
        "for a fresh one); a busy or stale baseline understates the energy above idle",
    )
