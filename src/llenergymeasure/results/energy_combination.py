"""How the processes' energy adds up: device-level summed, machine-level once per host.

A device-level component (each GPU owned by one process) is summed over processes; a
machine-level one (CPU packages, DRAM: RAPL or the estimate) covers every process of its
host (`host_id`, the kernel it ran on; the hostname for schema 1 results), so each host
counts one reading, the one whose window is the longest (a warning says which was taken
when it does not cover the others). The boundaries and the headline follow from the
summed components. The aggregation (`aggregation.py`) calls these.
"""

from __future__ import annotations

from collections import defaultdict

from llenergymeasure.domain.energy import (
    ComponentEnergy,
    EnergyBoundary,
    boundaries_of,
    headline,
    weakest_method,
)
from llenergymeasure.domain.experiment import EnergyScope, ExperimentManifest, RawProcessResult
from llenergymeasure.domain.metrics import EnergyBreakdown, EnergyMethod
from llenergymeasure.domain.phase_split import PhaseSubtraction
from llenergymeasure.results.parallel_groups import counting_processes

# A machine-level window missing more than this share of its host's processes' span is
# reported: energy used outside it is not counted.
MACHINE_WINDOW_COVERAGE = 0.99


def host_key(result: RawProcessResult) -> str:
    """The machine a process ran on: its host identity, its host name for schema 1 results."""
    return result.host_id or result.host


def process_components(result: RawProcessResult) -> list[ComponentEnergy]:
    """A process's energy components; schema 1 results had one, its breakdown's.

    A schema 1 process on a GPU whose one reading was the host's CPU (NVML had failed
    and `auto` fell back) gets an unmeasured GPU component, so that no GPU total can
    leave its GPU out silently.
    """
    if result.energy_components:
        return result.energy_components
    legacy = _schema_1_components(result)
    if result.runs_on_gpu and not any(c.component == "gpu" for c in legacy):
        window_s = energy_window_s(result)
        legacy.insert(
            0,
            ComponentEnergy(
                component="gpu", method="none", scope="device", energy_j=None, window_s=window_s
            ),
        )
    return legacy


def _schema_1_components(result: RawProcessResult) -> list[ComponentEnergy]:
    breakdown = result.energy_breakdown
    devices = result.devices
    if breakdown is None or not devices:
        return []
    return [
        ComponentEnergy.measured(
            devices[0].kind,
            result.energy_method,
            devices[0].scope,
            [d.device_id for d in devices],
            breakdown.raw_j,
            breakdown.inference_duration_s,
            baseline_power_w=breakdown.baseline_power_w,
            baseline_std_w=breakdown.baseline_std_w,
            baseline_method=breakdown.baseline_method,
        )
    ]


def energy_window_s(result: RawProcessResult) -> float:
    """The window a process's energy covers (its busy window for schema 1 results)."""
    return (
        result.energy_window_s
        if result.energy_window_s is not None
        else result.inference_duration_s
    )


def combine_energy(
    results: list[RawProcessResult], manifest: ExperimentManifest
) -> tuple[list[ComponentEnergy], list[EnergyBoundary], EnergyBreakdown | None, list[str]]:
    """Every component summed over processes, then the boundaries and the headline.

    Device-level components (GPUs, each owned by one process) are summed over processes.
    A machine-level component (CPU packages, DRAM: RAPL or the estimate) covers every
    process of its host, so each host counts one reading of it: the one whose window is
    the longest, which covers the others' when they ran together (a note says which was
    taken when it does not). Boundaries follow from the summed components by the same
    rule as for one process (`domain/energy.py`).

    Returns:
        The components, the boundaries, the headline breakdown (None when no process
        measured energy) and notes on machine-level readings.

    """
    output_tokens = sum(r.output_tokens for r in counting_processes(results))
    by_process = [(r, process_components(r)) for r in results]
    gpus_expected = any(
        r.runs_on_gpu or any(c.component == "gpu" for c in components)
        for r, components in by_process
    )
    parts: dict[str, list[ComponentEnergy]] = defaultdict(list)
    machine: dict[tuple[str, str], list[tuple[RawProcessResult, ComponentEnergy]]] = defaultdict(
        list
    )
    for r, components in by_process:
        for c in components:
            if c.scope == "machine":
                machine[(c.component, host_key(r))].append((r, c))
            else:
                parts[c.component].append(c)
    notes = []
    for (component, _), group in sorted(machine.items()):
        chosen, note = choose_machine_reading(group[0][0].host, component, group)
        parts[component].append(chosen)
        notes += note
    if not parts:
        return [], [], None, notes
    components = [ComponentEnergy.combine(parts[k]) for k in ("gpu", "cpu", "dram") if k in parts]
    measurement = (
        manifest.config.get("measurement", {}) if isinstance(manifest.config, dict) else {}
    )
    boundaries = boundaries_of(
        components,
        output_tokens,
        gpus_expected=gpus_expected,
        pue=measurement.get("pue"),
        grid_intensity_g_per_kwh=measurement.get("grid_intensity_g_per_kwh"),
    )
    boundaries = [_with_partial_hosts(b, machine, results) for b in boundaries]
    window_s = max(energy_window_s(r) for r in results)
    breakdown = headline(components, boundaries, gpus_expected=gpus_expected, window_s=window_s)
    return components, boundaries, breakdown, notes


def _with_partial_hosts(
    boundary: EnergyBoundary,
    machine: dict[tuple[str, str], list[tuple[RawProcessResult, ComponentEnergy]]],
    results: list[RawProcessResult],
) -> EnergyBoundary:
    """A machine-level component that some hosts could not measure is named as such.

    Its sum covers only the hosts that measured it (DRAM on an Intel host and none on an
    AMD one): the boundary lists it in `unmeasured` too, and its note says on how many.
    """
    hosts = {host_key(r) for r in results}
    partial = []
    for kind in boundary.components:
        measured_on = {host for component, host in machine if component == kind}
        if measured_on and measured_on != hosts:
            partial.append(f"{kind} measured on {len(measured_on)} of {len(hosts)} hosts")
    if not partial:
        return boundary
    kinds = [p.split(" ", 1)[0] for p in partial]
    note = "; ".join(filter(None, [boundary.note, *partial]))
    return boundary.model_copy(
        update={"unmeasured": [*boundary.unmeasured, *kinds], "note": note}  # type: ignore[list-item]
    )


def choose_machine_reading(
    host: str, component: str, group: list[tuple[RawProcessResult, ComponentEnergy]]
) -> tuple[ComponentEnergy, list[str]]:
    """The one machine-level reading of a component on a host: the longest window's.

    A reading with energy is preferred to one whose energy could not be read.

    A note says which was taken when that window does not cover the span of the host's
    processes (they did not run together, or one started late).
    """
    chosen, reading = max(
        group, key=lambda rc: (rc[1].energy_j is not None, rc[1].window_s, -rc[0].process_index)
    )
    starts = [r.energy_window_start_unix_s or r.inference_start_unix_s for r, _ in group]
    ends = [r.energy_window_end_unix_s or r.inference_end_unix_s for r, _ in group]
    span_s = max(ends) - min(starts)
    if len(group) == 1 or reading.window_s >= MACHINE_WINDOW_COVERAGE * span_s:
        return reading, []
    others = ", ".join(str(r.process_index) for r, _ in group if r is not chosen)
    return reading, [
        f"host {host}: machine-level {component} energy ({reading.method}) counted once, from "
        f"process {chosen.process_index}, whose window ({reading.window_s:.2f} s) "
        f"covers {reading.window_s / span_s:.0%} of the span of processes "
        f"{chosen.process_index}, {others} ({span_s:.2f} s); energy used outside it is "
        "not counted"
    ]


def combine_phase_subtraction(
    results: list[RawProcessResult],
) -> tuple[PhaseSubtraction | None, list[str]]:
    """The processes' prefill-pass subtraction as one record, or None and why not.

    Summed where each process measured energy of its own (`PhaseSubtraction.combine`);
    processes on one host sharing a machine-level reading (the CPU estimate, RAPL) each
    measured the whole host, so their figures cannot be added.
    """
    parts = [r.phase_subtraction for r in results if r.phase_subtraction is not None]
    if not parts:
        return None, []
    if len(parts) < len(results):
        return None, [
            f"phase_subtraction: {len(parts)} of {len(results)} processes recorded a "
            "prefill pass; not combined"
        ]
    if len(results) == 1:
        return parts[0], []
    machine_hosts = [host_key(r) for r in results if energy_scope(r) == "machine"]
    if len(machine_hosts) > len(set(machine_hosts)):
        return None, [
            "phase_subtraction: processes on one host share its machine-level energy, so "
            "their prefill passes cannot be added; each process_<i>.json has its own"
        ]
    counted = {r.process_index for r in counting_processes(results)}
    pairs = zip(results, parts, strict=True)
    return PhaseSubtraction.combine(parts, [p for r, p in pairs if r.process_index in counted]), []


def combine_energy_method(results: list[RawProcessResult]) -> tuple[EnergyMethod, list[str]]:
    """The weakest headline method of any process (estimate < power integral < counter)."""
    methods = sorted({r.energy_method for r in results})
    if len(methods) == 1:
        return methods[0], []
    return weakest_method(methods), [
        f"processes measured energy by different methods ({', '.join(methods)}); "
        "the weakest is reported"
    ]


def energy_scope(result: RawProcessResult) -> EnergyScope | None:
    """The scope of a process's headline energy; None when it measured none.

    `device` for its GPUs, `machine` for a host-level figure (RAPL, the estimate) that
    the host's processes share.
    """
    if result.energy_breakdown is None:
        return None
    if result.energy_breakdown.boundary is not None:
        return "device" if result.energy_breakdown.boundary == "gpu" else "machine"
    devices = result.devices
    return "machine" if devices and all(d.scope == "machine" for d in devices) else "device"
