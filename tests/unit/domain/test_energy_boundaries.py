"""Energy by component and boundary: each boundary says what it sums, and sums only that."""

from __future__ import annotations

import pytest

from llenergymeasure.domain.energy import (
    ComponentEnergy,
    boundaries_of,
    headline,
    weakest_method,
)


def component(kind: str, energy_j: float | None, baseline_w: float | None = None, **kw):
    scope = "device" if kind == "gpu" else "machine"
    method = kw.pop("method", "nvml_counter" if kind == "gpu" else "rapl")
    return ComponentEnergy.measured(
        kind,
        method,
        scope,
        kw.pop("device_ids", [f"{kind}-0"]),
        energy_j,
        kw.pop("window_s", 10.0),
        baseline_power_w=baseline_w,
        baseline_std_w=kw.pop("std_w", None if baseline_w is None else 1.0),
        baseline_method="fresh" if baseline_w is not None else "unavailable",
        **kw,
    )


def by_name(boundaries):
    return {b.name: b for b in boundaries}


def test_each_boundary_sums_its_components_side_by_side() -> None:
    parts = [
        component("gpu", 3000.0, 60.0),
        component("cpu", 800.0, 40.0),
        component("dram", 50.0, 2.0),
    ]
    b = by_name(boundaries_of(parts, 1000, gpus_expected=True))
    assert (b["gpu"].energy_j, b["gpu"].above_idle_j) == (3000.0, 2400.0)
    assert (b["cpu_dram"].energy_j, b["cpu_dram"].above_idle_j) == (850.0, 430.0)
    assert (b["node"].energy_j, b["node"].above_idle_j) == (3850.0, 2830.0)
    assert b["node"].components == ["gpu", "cpu", "dram"]
    assert b["gpu"].energy_per_output_token_j == 3.0
    assert b["node"].above_idle_per_output_token_j == pytest.approx(2.83)
    assert "facility" not in b


def test_facility_is_node_times_pue_and_co2e_follows_the_grid() -> None:
    parts = [component("gpu", 3.6e6, 0.0), component("cpu", 3.6e6, 0.0)]
    b = by_name(
        boundaries_of(parts, 100, gpus_expected=True, pue=1.5, grid_intensity_g_per_kwh=400.0)
    )
    facility = b["facility"]
    assert facility.energy_j == pytest.approx(2 * 3.6e6 * 1.5)  # 3 kWh at the facility
    assert facility.co2e_g == pytest.approx(3.0 * 400.0)
    assert facility.pue == 1.5 and b["node"].co2e_g is None
    no_grid = by_name(boundaries_of(parts, 100, gpus_expected=True, pue=1.2))["facility"]
    assert no_grid.co2e_g is None and no_grid.energy_j == pytest.approx(2 * 3.6e6 * 1.2)


def test_an_unmeasured_gpu_nulls_every_boundary_that_needs_it() -> None:
    gpu = ComponentEnergy(
        component="gpu", method="none", scope="device", energy_j=None, window_s=10
    )
    b = by_name(boundaries_of([gpu, component("cpu", 800.0, 40.0)], 10, gpus_expected=True))
    assert b["gpu"].energy_j is None and b["node"].energy_j is None
    assert b["cpu_dram"].energy_j == 800.0  # CPU energy stays CPU energy


def test_a_cpu_run_has_no_gpu_boundary_and_lists_what_is_not_measured() -> None:
    b = by_name(
        boundaries_of([component("cpu", 500.0, 20.0, method="estimate")], 10, gpus_expected=False)
    )
    assert b["gpu"].energy_j is None and b["gpu"].note == "no GPU in this process"
    assert b["cpu_dram"].energy_j == 500.0 and b["cpu_dram"].unmeasured == ["dram"]
    assert b["node"].energy_j == 500.0 and b["node"].components == ["cpu"]


def test_the_headline_is_the_boundary_of_the_devices_that_ran_the_model() -> None:
    parts = [component("gpu", 3000.0, 60.0), component("cpu", 800.0, 40.0)]
    gpu_run = headline(
        parts, boundaries_of(parts, 10, gpus_expected=True), gpus_expected=True, window_s=10.0
    )
    assert (gpu_run.boundary, gpu_run.raw_j, gpu_run.adjusted_j) == ("gpu", 3000.0, 2400.0)
    assert gpu_run.baseline_power_w == 60.0 and gpu_run.baseline_energy_j == 600.0
    cpu = [component("cpu", 800.0, 40.0)]
    cpu_run = headline(
        cpu, boundaries_of(cpu, 10, gpus_expected=False), gpus_expected=False, window_s=10.0
    )
    assert (cpu_run.boundary, cpu_run.raw_j) == ("cpu_dram", 800.0)


def test_combined_components_satisfy_their_own_formula() -> None:
    # Two GPUs whose windows differ slightly: the baseline energy is each one's own
    # idle power times its own window, and the above-idle figure is derived once.
    a = component("gpu", 1000.0, 50.0, window_s=10.0, std_w=3.0, device_ids=["GPU-a"])
    b = component("gpu", 1200.0, 70.0, window_s=10.5, std_w=4.0, device_ids=["GPU-b"])
    total = ComponentEnergy.combine([a, b])
    assert total.energy_j == 2200.0
    assert total.baseline_power_w == 120.0
    assert total.baseline_std_w == pytest.approx(5.0)  # root sum of squares, not 7
    assert total.baseline_energy_j == pytest.approx(50.0 * 10.0 + 70.0 * 10.5)
    assert total.above_idle_j == pytest.approx(total.energy_j - total.baseline_energy_j)
    assert total.window_s == 10.5 and total.device_ids == ["GPU-a", "GPU-b"]


def test_a_sum_with_an_unread_part_is_unknown_not_partial() -> None:
    total = ComponentEnergy.combine([component("gpu", 1000.0, 50.0), component("gpu", None, 50.0)])
    assert total.energy_j is None and total.above_idle_j is None


def test_clipping_happens_once_on_the_sum() -> None:
    # One GPU below its baseline, one above: the sum is not clipped part by part.
    low = component("gpu", 100.0, 20.0)  # 200 J of baseline: clipped alone
    high = component("gpu", 1000.0, 20.0)
    assert low.above_idle_clipped and low.above_idle_j == 0.0
    total = ComponentEnergy.combine([low, high])
    assert total.above_idle_j == pytest.approx(1100.0 - 400.0)
    assert not total.above_idle_clipped


def test_the_weakest_method_wins() -> None:
    assert weakest_method(["nvml_counter", "nvml_power_integral"]) == "nvml_power_integral"
    assert weakest_method(["rapl", "estimate"]) == "estimate"
    assert weakest_method(["nvml_counter"]) == "nvml_counter"


def test_a_module_counter_is_not_added_to_the_host_cpu_again() -> None:
    # GH200: the GPU's counter covers the Grace CPU and memory of the module.
    module = component("gpu", 3000.0, 90.0, energy_scope="module")
    b = by_name(
        boundaries_of([module, component("cpu", 400.0, 30.0)], 100, gpus_expected=True, pue=1.5)
    )
    assert b["node"].energy_j == 3000.0 and b["node"].components == ["gpu"]
    assert "covers the whole module" in b["node"].note
    assert b["facility"].energy_j == pytest.approx(4500.0)
    assert b["cpu_dram"].energy_j == 400.0  # the host's own CPU figure still stands apart
    assert ComponentEnergy.combine([module, component("gpu", 1.0, 0.0)]).energy_scope == "module"
