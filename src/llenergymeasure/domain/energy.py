"""Energy by component and by boundary: what a joule in a result covers.

A process keeps each component apart (`ComponentEnergy`): its GPUs (per UUID, device
level), the CPU packages and DRAM of its host (machine level, RAPL or the estimate). A
boundary (`EnergyBoundary`) is a named sum of components, stated side by side:

| boundary   | components          | what it answers                                        |
|------------|---------------------|--------------------------------------------------------|
| `gpu`      | gpu                 | the accelerators that ran the model                    |
| `cpu_dram` | cpu, dram           | the host's processors and memory                       |
| `node`     | gpu, cpu, dram      | everything measured on the machine                     |
| `facility` | node x PUE          | with the data centre's overhead, and CO2e (on request) |

Each has raw joules and joules above idle (`above_idle_j`: raw minus the idle baseline
power times the window). A boundary is null when a component it needs was not measured
although the process has it (a GPU whose NVML failed): CPU energy is never passed off as
the run's energy. A component that the machine cannot measure at all (DRAM without a
RAPL DRAM zone) is listed in `unmeasured` and left out, with a warning.

The aggregate is computed from the aggregated components by the same rule
(`boundaries_of`), so every stored boundary recomputes from the stored components.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llenergymeasure.domain.metrics import BaselineMethod, EnergyBreakdown, EnergyMethod

Component = Literal["gpu", "cpu", "dram"]
BoundaryName = Literal["gpu", "cpu_dram", "node", "facility"]
BaselineSource = Literal["counter", "power_reading", "model"]

BOUNDARY_COMPONENTS: dict[BoundaryName, tuple[Component, ...]] = {
    "gpu": ("gpu",),
    "cpu_dram": ("cpu", "dram"),
    "node": ("gpu", "cpu", "dram"),
    "facility": ("gpu", "cpu", "dram"),
}
# Weakest first: an aggregate reports the weakest method any process used.
METHOD_STRENGTH: dict[str, int] = {
    "none": 0,
    "estimate": 1,
    "nvml_power_integral": 2,
    "rapl": 3,
    "nvml_counter": 3,
}
JOULES_PER_KWH = 3.6e6


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ComponentEnergy(_Record):
    """One component's energy over the energy window, and its idle baseline.

    `baseline_energy_j = baseline_power_w x window_s` and `above_idle_j = max(0, energy_j
    - baseline_energy_j)`; `above_idle_clipped` says when the max took effect (the
    baseline was higher than the window's mean power).
    """

    component: Component
    method: EnergyMethod
    scope: Literal["device", "machine"]
    device_ids: list[str] = Field(default_factory=list)
    energy_j: float | None = Field(ge=0)
    window_s: float = Field(ge=0)
    baseline_power_w: float | None = Field(None, ge=0)
    baseline_std_w: float | None = Field(None, ge=0)
    baseline_method: BaselineMethod = "unavailable"
    baseline_source: BaselineSource | None = None
    baseline_duration_s: float | None = None
    baseline_age_s: float | None = Field(
        None, description="Age of the baseline when the window started (0 for a fresh one)."
    )
    baseline_energy_j: float | None = None
    above_idle_j: float | None = None
    above_idle_clipped: bool = False
    energy_scope: Literal["gpu", "module"] | None = Field(
        None,
        description="For GPUs: `module` when a counter covers the whole GH200/GB200 module "
        "(its CPU and memory included), so host CPU and DRAM are not added to it.",
    )

    @classmethod
    def measured(
        cls,
        component: Component,
        method: EnergyMethod,
        scope: Literal["device", "machine"],
        device_ids: list[str],
        energy_j: float | None,
        window_s: float,
        **baseline: object,
    ) -> ComponentEnergy:
        """A component with its above-idle figures derived from the baseline given."""
        power_w = baseline.get("baseline_power_w")
        baseline_j = power_w * window_s if isinstance(power_w, (int, float)) else None
        above, clipped = _above_idle(energy_j, baseline_j)
        return cls(
            component=component,
            method=method,
            scope=scope,
            device_ids=device_ids,
            energy_j=energy_j,
            window_s=window_s,
            baseline_energy_j=baseline_j,
            above_idle_j=above,
            above_idle_clipped=clipped,
            **baseline,
        )

    @classmethod
    def combine(cls, parts: Sequence[ComponentEnergy]) -> ComponentEnergy:
        """The sum of the same component over processes or hosts that do not overlap.

        Energies and baseline energies add (None when any part is None): the baseline
        energy is each part's idle power times its own window, so with windows of different
        lengths it is not `baseline_power_w x window_s`; idle powers add; their spreads add
        in quadrature (independent devices); the window is the longest; the method is the
        weakest; the above-idle figure is derived once, from the sums.
        """
        first = parts[0]
        methods = {p.baseline_method for p in parts}
        baseline_method: BaselineMethod = (
            "unavailable"
            if "unavailable" in methods
            else "cached"
            if methods == {"cached"}
            else "fresh"
        )
        baseline_j = _sum_or_none([p.baseline_energy_j for p in parts])
        energy_j = _sum_or_none([p.energy_j for p in parts])
        above, clipped = _above_idle(energy_j, baseline_j)
        stds = [p.baseline_std_w for p in parts]
        ages = [p.baseline_age_s for p in parts if p.baseline_age_s is not None]
        sources = {p.baseline_source for p in parts}
        return cls(
            component=first.component,
            method=weakest_method([p.method for p in parts]),
            scope=first.scope,
            device_ids=[d for p in parts for d in p.device_ids],
            energy_j=energy_j,
            window_s=max(p.window_s for p in parts),
            baseline_power_w=_sum_or_none([p.baseline_power_w for p in parts]),
            baseline_std_w=None if None in stds else math.sqrt(sum(s * s for s in stds)),
            baseline_method=baseline_method,
            baseline_source=sources.pop() if len(sources) == 1 else None,
            baseline_duration_s=min(
                (p.baseline_duration_s for p in parts if p.baseline_duration_s is not None),
                default=None,
            ),
            baseline_age_s=max(ages) if ages else None,
            baseline_energy_j=baseline_j,
            above_idle_j=above,
            above_idle_clipped=clipped,
            energy_scope="module" if any(p.energy_scope == "module" for p in parts) else None,
        )


class EnergyBoundary(_Record):
    """A named sum of components, with raw and above-idle joules and J per output token."""

    name: BoundaryName
    components: list[Component] = Field(description="The components summed here.")
    unmeasured: list[Component] = Field(
        default_factory=list,
        description="Components of this boundary that this machine cannot measure; left out.",
    )
    energy_j: float | None
    above_idle_j: float | None
    energy_per_output_token_j: float | None = None
    above_idle_per_output_token_j: float | None = None
    pue: float | None = None
    co2e_g: float | None = None
    note: str | None = None


def headline_boundary(gpus_expected: bool) -> BoundaryName:
    """The boundary of the devices that ran the model: the GPUs, or the host's CPU."""
    return "gpu" if gpus_expected else "cpu_dram"


def headline(
    components: Sequence[ComponentEnergy],
    boundaries: Sequence[EnergyBoundary],
    *,
    gpus_expected: bool,
    window_s: float,
) -> EnergyBreakdown:
    """The headline breakdown: the headline boundary's joules and its components' baseline."""
    name = headline_boundary(gpus_expected)
    boundary = next(b for b in boundaries if b.name == name)
    counted = [c for c in components if c.component in boundary.components]
    stds = [c.baseline_std_w for c in counted]
    methods = {c.baseline_method for c in counted}
    return EnergyBreakdown(
        raw_j=boundary.energy_j,
        adjusted_j=boundary.above_idle_j,
        baseline_power_w=_sum_or_none([c.baseline_power_w for c in counted]),
        baseline_std_w=None if not stds or None in stds else math.sqrt(sum(s * s for s in stds)),
        baseline_method=_combined_baseline_method(methods) if counted else "unavailable",
        inference_duration_s=window_s,
        baseline_energy_j=_sum_or_none([c.baseline_energy_j for c in counted]),
        boundary=name,
    )


def _combined_baseline_method(methods: set[str]) -> BaselineMethod:
    """`unavailable` if any part has none, `cached` if every part came from the cache."""
    if "unavailable" in methods:
        return "unavailable"
    return "cached" if methods == {"cached"} else "fresh"


def weakest_method(methods: Sequence[str]) -> EnergyMethod:
    """The weakest of several methods (estimate < power integral < counter)."""
    return min(methods, key=lambda m: METHOD_STRENGTH.get(m, 0))  # type: ignore[return-value]


def boundaries_of(
    components: Sequence[ComponentEnergy],
    output_tokens: int,
    *,
    gpus_expected: bool,
    pue: float | None = None,
    grid_intensity_g_per_kwh: float | None = None,
) -> list[EnergyBoundary]:
    """Every boundary from a set of components (one per kind at most).

    Args:
        components: the measured (or failed) components; at most one per kind.
        output_tokens: the tokens the energy paid for (J/token).
        gpus_expected: the process ran on GPUs, so a boundary with GPU in it needs them.
        pue: the facility's power usage effectiveness, for the `facility` boundary.
        grid_intensity_g_per_kwh: grid carbon intensity, for the facility's CO2e.

    """
    by_kind = {c.component: c for c in components}
    node = _boundary("node", by_kind, output_tokens, gpus_expected)
    boundaries = [
        _boundary("gpu", by_kind, output_tokens, gpus_expected),
        _boundary("cpu_dram", by_kind, output_tokens, gpus_expected),
        node,
    ]
    if pue is not None:
        boundaries.append(_facility(node, output_tokens, pue, grid_intensity_g_per_kwh))
    return boundaries


def _boundary(
    name: BoundaryName,
    by_kind: dict[str, ComponentEnergy],
    output_tokens: int,
    gpus_expected: bool,
) -> EnergyBoundary:
    if name == "gpu" and not gpus_expected:
        return EnergyBoundary(
            name=name,
            components=[],
            energy_j=None,
            above_idle_j=None,
            note="no GPU in this process",
        )
    needed = [k for k in BOUNDARY_COMPONENTS[name] if k != "gpu" or gpus_expected]
    module = by_kind.get("gpu") is not None and by_kind["gpu"].energy_scope == "module"
    if module and name in ("node", "facility"):
        needed = ["gpu"]  # the module counter holds the CPU and memory already
    present = [by_kind[k] for k in needed if k in by_kind]
    unmeasured = [k for k in needed if k not in by_kind]
    if "gpu" in unmeasured or not present:
        return EnergyBoundary(
            name=name,
            components=[c.component for c in present],
            unmeasured=unmeasured,
            energy_j=None,
            above_idle_j=None,
            note="a component it needs was not measured",
        )
    energy_j = _sum_or_none([c.energy_j for c in present])
    above_j = _sum_or_none([c.above_idle_j for c in present])
    return EnergyBoundary(
        name=name,
        components=[c.component for c in present],
        unmeasured=unmeasured,
        energy_j=energy_j,
        above_idle_j=above_j,
        energy_per_output_token_j=_per_token(energy_j, output_tokens),
        above_idle_per_output_token_j=_per_token(above_j, output_tokens),
        note="the GPU counter covers the whole module: CPU and DRAM are in it, not added"
        if module and name == "node"
        else None,
    )


def _facility(
    node: EnergyBoundary, output_tokens: int, pue: float, grid_g_per_kwh: float | None
) -> EnergyBoundary:
    energy_j = node.energy_j * pue if node.energy_j is not None else None
    above_j = node.above_idle_j * pue if node.above_idle_j is not None else None
    co2e_g = (
        energy_j / JOULES_PER_KWH * grid_g_per_kwh
        if energy_j is not None and grid_g_per_kwh is not None
        else None
    )
    return EnergyBoundary(
        name="facility",
        components=node.components,
        unmeasured=node.unmeasured,
        energy_j=energy_j,
        above_idle_j=above_j,
        energy_per_output_token_j=_per_token(energy_j, output_tokens),
        above_idle_per_output_token_j=_per_token(above_j, output_tokens),
        pue=pue,
        co2e_g=co2e_g,
        note=f"node x PUE {pue:g}" + (f"; {node.note}" if node.note else ""),
    )


def _above_idle(energy_j: float | None, baseline_j: float | None) -> tuple[float | None, bool]:
    if energy_j is None or baseline_j is None:
        return None, False
    return max(0.0, energy_j - baseline_j), energy_j < baseline_j


def _per_token(energy_j: float | None, output_tokens: int) -> float | None:
    return energy_j / output_tokens if energy_j is not None and output_tokens > 0 else None


def _sum_or_none(values: Sequence[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(sum(values))  # type: ignore[arg-type]
