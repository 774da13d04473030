"""Warnings about the quality of a measurement. Informational: they never block a run."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from llenergymeasure.core.host import CpuTimeFigures
from llenergymeasure.domain.environment import GpuInfo
from llenergymeasure.domain.metrics import EnergyMeasurement, MeasurementWarning
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample

SHORT_MEASUREMENT_S = 10.0
LOW_SAMPLE_COUNT = 10
THERMAL_DRIFT_C = 10.0
CROSS_CHECK_TOLERANCE = 0.05
# Others' share of the host's busy CPU time above which a run is flagged as contended,
# and the CPU seconds of others' work below which it is noise (daemons, 10 ms ticks).
HOST_CONTENTION_SHARE = 0.25
HOST_CONTENTION_MIN_CPU_S = 0.5


def collect_measurement_warnings(
    *,
    duration_s: float,
    power_readings: dict[int, int],
    readings: Sequence[EnergyMeasurement],
    energy_requested: bool,
    sampler_errors: dict[str, str] | None = None,
    has_gpu: bool = True,
    samples: Sequence[PowerThermalSample] = (),
    gpus: Sequence[GpuInfo] = (),
    power_integral_j: float | None = None,
) -> list[MeasurementWarning]:
    """Every condition that makes the figures less trustworthy, with a remedy.

    Args:
        duration_s: length of the energy window.
        power_readings: power readings per sampled device in it (GPUs; the CPU has none).
        readings: what each energy backend measured (none: no backend was asked for).
        energy_requested: whether the config asked for energy at all.
        sampler_errors: readings that failed during the window, by reading.
        has_gpu: whether this process ran on a GPU.
        samples: the window's samples (GPU rows give the temperature drift).
        gpus: the process's GPUs at the start (persistence mode).
        power_integral_j: the trapezoidal integral of the sampled GPU power over the
            window, compared with the energy counter.

    """
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
    fewest = min(power_readings.values(), default=None)
    if has_gpu and (fewest is None or fewest < LOW_SAMPLE_COUNT):
        warnings.append(
            MeasurementWarning(
                code="low_sample_count",
                message=f"only {fewest or 0} power readings of a GPU in the window",
                remediation="lengthen the run or lower measurement.energy.sample_interval_ms",
            )
        )
    for estimate in (r for r in readings if r.is_estimate):
        warnings.append(
            MeasurementWarning(
                code="energy_estimated",
                message="CPU energy is an estimate (TDP x CPU utilisation), not a measurement: "
                + "; ".join(estimate.assumptions),
                remediation="run where RAPL (/sys/class/powercap) or NVML is readable, or set "
                "measurement.energy.cpu_tdp_w to the full-load power of all the host's CPUs",
            )
        )
    if not readings and energy_requested:
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
                "those readings are null",
                remediation="check driver and permissions; the window's energy is unaffected",
            )
        )
    gpu_reading = next((r for r in readings if any(d.kind == "gpu" for d in r.devices)), None)
    checks = (
        _persistence_off(gpus),
        _thermal_drift(samples),
        _counter_disagrees(gpu_reading, power_integral_j),
        *(_mig_shared(r) for r in readings),
        *(_gpu_shared(r) for r in readings),
        *(_power_reading_switched(r) for r in readings),
        *(_energy_incomplete(r) for r in readings),
    )
    warnings.extend(w for w in checks if w is not None)
    return warnings


def _persistence_off(gpus: Sequence[GpuInfo]) -> MeasurementWarning | None:
    off = [g.uuid for g in gpus if g.persistence_mode is False]
    if not off:
        return None
    return MeasurementWarning(
        code="persistence_mode_off",
        message=f"persistence mode is off on {', '.join(off)}: the driver may tear the GPU "
        "state down between runs, so start-up and idle power vary from run to run",
        remediation="enable it with `sudo nvidia-smi -pm 1` (or run nvidia-persistenced)",
    )


def _thermal_drift(samples: Sequence[PowerThermalSample]) -> MeasurementWarning | None:
    temps: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        if s.device_index != CPU_DEVICE_INDEX and s.temperature_c is not None:
            temps[s.device_index].append(s.temperature_c)
    drifts = {i: max(t) - min(t) for i, t in temps.items() if max(t) - min(t) > THERMAL_DRIFT_C}
    if not drifts:
        return None
    listed = ", ".join(f"GPU {i}: {d:.0f} C" for i, d in sorted(drifts.items()))
    return MeasurementWarning(
        code="thermal_drift",
        message=f"temperature changed by more than {THERMAL_DRIFT_C:g} C during the window "
        f"({listed}); power and clocks depend on it",
        remediation="use measurement.thermal_floor.mode: stable_temperature (or a longer "
        "sleep), or warm up longer, so runs start at a steady temperature",
    )


def _counter_disagrees(
    energy: EnergyMeasurement | None, power_integral_j: float | None
) -> MeasurementWarning | None:
    counter_j = energy.total_j if energy is not None and energy.method == "nvml_counter" else None
    if not counter_j or power_integral_j is None:
        return None
    gap = abs(power_integral_j - counter_j) / counter_j
    if gap <= CROSS_CHECK_TOLERANCE:
        return None
    return MeasurementWarning(
        code="energy_cross_check",
        message=f"the energy counter ({counter_j:.1f} J) and the integral of sampled power "
        f"({power_integral_j:.1f} J) differ by {gap:.1%} (more than "
        f"{CROSS_CHECK_TOLERANCE:.0%}); the counter is reported",
        remediation="the samples miss bursts shorter than the sampling interval (lower "
        "measurement.energy.sample_interval_ms), lag by up to 1 s (the averaged reading: "
        "lengthen the window), or cover another power scope than the counter (GPU vs "
        "module on GH200/GB200); check the driver if it persists",
    )


def _mig_shared(energy: EnergyMeasurement | None) -> MeasurementWarning | None:
    migs = [d for d in energy.devices if d.is_mig] if energy is not None else []
    if not migs:
        return None
    listed = ", ".join(f"{d.device_id} (GPU {d.parent_uuid})" for d in migs)
    return MeasurementWarning(
        code="mig_parent_energy",
        message=f"MIG instance energy is that of the whole parent GPU: {listed}; other "
        "instances' work on that GPU is included",
        remediation="measure on a whole GPU, or keep the other MIG instances idle",
    )


def _gpu_shared(energy: EnergyMeasurement) -> MeasurementWarning | None:
    shared = [d for d in energy.devices if d.other_processes]
    if not shared:
        return None
    listed = "; ".join(
        f"{d.device_id}: pid {', '.join(map(str, d.other_processes or []))}" for d in shared
    )
    return MeasurementWarning(
        code="gpu_shared",
        message=f"other compute processes ran on the measured GPU during the window ({listed}); "
        "their work is in its energy",
        remediation="measure on GPUs that run nothing else (nvidia-smi lists their processes)",
    )


def _power_reading_switched(energy: EnergyMeasurement) -> MeasurementWarning | None:
    switches = [s for d in energy.devices for s in d.power_reading_switches]
    if not switches:
        return None
    return MeasurementWarning(
        code="power_reading_switched",
        message=f"a GPU's power reading changed during the run ({'; '.join(switches)}): "
        "baseline, sampled power and any power integral before and after it are not "
        "comparable",
        remediation="check the driver (the instant power field failed repeatedly); "
        "re-run, or use the energy counter's figures only",
    )


def _energy_incomplete(energy: EnergyMeasurement | None) -> MeasurementWarning | None:
    if energy is None or energy.total_j is not None:
        return None
    missing = [d.device_id for d in energy.devices if d.energy_j is None]
    return MeasurementWarning(
        code="energy_incomplete",
        message=f"energy of {', '.join(missing) or 'every device'} could not be read at the "
        "window's edges; total energy is null",
        remediation="check the device with `nvidia-smi -q` and the kernel log, then re-run",
    )


def host_contention_warning(
    process_cpu_s: float, host_busy_cpu_s: float
) -> MeasurementWarning | None:
    """`host_contention` when other work took a large share of the host's CPU in the window.

    Fires when others' share (1 - process / host, clipped to [0, 1]) exceeds
    `HOST_CONTENTION_SHARE` and their CPU time is at least `HOST_CONTENTION_MIN_CPU_S`.
    For several processes of one experiment on one host, pass the sum of their
    `process_cpu_s` and the host's busy time, so that they are not each other's "others".

    Args:
        process_cpu_s: CPU seconds of the measured process(es) over the window.
        host_busy_cpu_s: busy CPU seconds of the whole host over the same window.

    """
    figures = CpuTimeFigures(process_cpu_s, host_busy_cpu_s)
    share = figures.others_share
    others_cpu_s = host_busy_cpu_s - process_cpu_s
    if share is None or share <= HOST_CONTENTION_SHARE or others_cpu_s < HOST_CONTENTION_MIN_CPU_S:
        return None
    return MeasurementWarning(
        code="host_contention",
        message=f"other processes used {share:.0%} of the host's busy CPU time in the window "
        f"(host {host_busy_cpu_s:.1f} CPU s, this run {process_cpu_s:.1f} CPU s); "
        "machine-level energy (RAPL, the CPU estimate) includes their work, and they "
        "compete with the run for the CPU",
        remediation="run on a quiet host (check with `top`), or keep other jobs off this "
        "machine during the run",
    )
