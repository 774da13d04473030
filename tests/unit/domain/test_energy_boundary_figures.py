"""Boundary figures a plausible slip would change: a missing GPU, the PUE on energy above idle."""

from __future__ import annotations

import pytest

from llenergymeasure.domain.energy import ComponentEnergy, boundaries_of


def measured(kind: str, energy_j: float, baseline_w: float) -> ComponentEnergy:
    return ComponentEnergy.measured(
        kind,
        "nvml_counter" if kind == "gpu" else "rapl",
        "device" if kind == "gpu" else "machine",
        [f"{kind}-0"],
        energy_j,
        10.0,
        baseline_power_w=baseline_w,
        baseline_std_w=1.0,
        baseline_method="fresh",
    )


def test_a_boundary_needing_a_gpu_with_no_reading_at_all_is_unknown() -> None:
    """On a GPU run whose GPUs gave no component, the node is not its CPU alone."""
    parts = [measured("cpu", 800.0, 40.0), measured("dram", 50.0, 2.0)]
    b = {x.name: x for x in boundaries_of(parts, 10, gpus_expected=True)}
    assert b["node"].energy_j is None and b["node"].above_idle_j is None
    assert b["node"].unmeasured == ["gpu"]
    assert b["gpu"].energy_j is None
    assert b["cpu_dram"].energy_j == 850.0


def test_the_facility_scales_energy_above_idle_by_the_pue_too() -> None:
    parts = [measured("gpu", 3000.0, 60.0), measured("cpu", 800.0, 40.0)]
    b = {x.name: x for x in boundaries_of(parts, 100, gpus_expected=True, pue=1.25)}
    assert b["node"].above_idle_j == pytest.approx(2400.0 + 400.0)
    assert b["facility"].above_idle_j == pytest.approx(2800.0 * 1.25)
    assert b["facility"].above_idle_per_output_token_j == pytest.approx(2800.0 * 1.25 / 100)
