"""Aggregation on process results written to disk: what is refused, summed, counted once."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.domain.energy import ComponentEnergy
from llenergymeasure.domain.experiment import ExperimentManifest, RawProcessResult
from llenergymeasure.domain.metrics import (
    DeviceEnergy,
    EnergyBreakdown,
    EnergyMeasurement,
    FlopsResult,
    LatencySamples,
    ThermalThrottleInfo,
)
from llenergymeasure.domain.phase_split import PhaseSubtraction
from llenergymeasure.errors import IncompleteExperiment, UnverifiedExperiment
from llenergymeasure.results.aggregation import aggregate_experiment
from llenergymeasure.results.layout import (
    ResultsLayout,
    manifest_path,
    process_result_path,
    write_marker,
    write_model,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
EXP = "exp_20260101T000000_abcd"


def result(
    index: int,
    *,
    host: str = "h0",
    start: float = 1000.0,
    duration: float = 10.0,
    energy_j: float = 100.0,
    device: str | None = None,
    method: str = "estimate",
    output_tokens: int = 50,
    **fields: Any,
) -> RawProcessResult:
    """A process result; machine-level CPU energy unless `device` names a GPU."""
    scope = "device" if device else "machine"
    energy = EnergyMeasurement(
        method=method,
        host=host,
        devices=[
            DeviceEnergy(
                device_id=device or "cpu",
                kind="gpu" if device else "cpu",
                scope=scope,
                energy_j=energy_j,
            )
        ],
        window_start_unix_s=start,
        window_end_unix_s=start + duration,
        duration_s=duration,
    )
    data: dict[str, Any] = dict(
        experiment_id=EXP,
        process_index=index,
        num_processes=2,
        host=host,
        pid=100 + index,
        config_name="exp",
        model_name="m",
        started_at=NOW,
        ended_at=NOW,
        inference_start_unix_s=start,
        inference_end_unix_s=start + duration,
        inference_duration_s=duration,
        num_requests=5,
        input_tokens=200,
        output_tokens=output_tokens,
        tokens_per_second=output_tokens / duration,
        energy_method=method,
        energy_readings=[energy],
        energy_breakdown=EnergyBreakdown(
            raw_j=energy_j,
            adjusted_j=energy_j - 1.0 * duration,
            baseline_power_w=1.0,
            baseline_method="fresh",
            inference_duration_s=duration,
        ),
        latency_samples=LatencySamples(
            ttft_ms=[10.0 * (index + 1)] * 5, itl_ms=[1.0] * 45, e2e_ms=[100.0] * 5
        ),
    )
    data.update(fields)
    return RawProcessResult(**data)


def write_experiment(root: Path, results: list[RawProcessResult], expected: int = 2) -> Path:
    experiment_dir = ResultsLayout(root).experiment_dir(EXP)
    experiment_dir.mkdir(parents=True)
    manifest = ExperimentManifest(
        experiment_id=EXP,
        config={},
        config_hash="x",
        expected_num_processes=expected,
        created_at=NOW,
    )
    write_model(manifest_path(experiment_dir), manifest)
    for r in results:
        data = write_model(process_result_path(experiment_dir, r.process_index), r)
        write_marker(experiment_dir, r.process_index, data)
    return experiment_dir


def aggregate(root: Path, **options: bool):
    aggregated, _ = aggregate_experiment(ResultsLayout(root), EXP, **options)
    return aggregated


def test_machine_level_energy_is_counted_once_per_host(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, duration=10.0, energy_j=200.0),
            result(1, start=1000.01, duration=6.0, energy_j=130.0),
        ],
    )
    agg = aggregate(tmp_path)
    assert agg.energy_breakdown.raw_j == 200.0  # the longer window, not 330
    assert agg.energy_breakdown.adjusted_j == pytest.approx(190.0)
    assert agg.output_tokens == 100 and agg.input_tokens == 400 and agg.num_requests == 10
    assert agg.energy_per_output_token_j == pytest.approx(2.0)
    assert agg.aggregation.temporal_overlap_verified and agg.aggregation.gpu_attribution_verified
    assert agg.aggregation.warnings == []


def test_machine_level_reading_that_does_not_cover_is_named(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [result(0, duration=10.0, energy_j=200.0), result(1, start=1004.0, duration=8.0)],
    )
    agg = aggregate(tmp_path)
    assert agg.energy_breakdown.raw_j == 200.0
    (note,) = agg.aggregation.warnings
    assert "host h0" in note and "from process 0" in note and "83%" in note


def test_each_host_counts_its_own_machine_energy(tmp_path: Path) -> None:
    write_experiment(
        tmp_path, [result(0, host="a", energy_j=100.0), result(1, host="b", energy_j=120.0)]
    )
    agg = aggregate(tmp_path)
    assert agg.energy_breakdown.raw_j == 220.0
    assert agg.hosts == ["a", "b"]


def test_device_level_energy_is_summed(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, device="GPU-a", method="nvml_counter", energy_j=300.0),
            result(1, device="GPU-b", method="nvml_counter", energy_j=310.0),
        ],
    )
    agg = aggregate(tmp_path)
    assert agg.energy_breakdown.raw_j == 610.0
    assert agg.energy_breakdown.baseline_power_w == 2.0
    assert agg.energy_method == "nvml_counter"
    assert [p.device_ids for p in agg.processes] == [["GPU-a"], ["GPU-b"]]


def test_throughput_mean_and_over_the_wall_window(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, duration=10.0, output_tokens=100),
            result(1, start=1002.0, duration=4.0, output_tokens=60),
        ],
    )
    agg = aggregate(tmp_path)
    assert agg.avg_tokens_per_second == pytest.approx((10.0 + 15.0) / 2)
    assert agg.wall_window_s == pytest.approx(10.0)
    assert agg.total_tokens_per_second == pytest.approx(16.0)


def test_latency_percentiles_come_from_pooled_samples(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0), result(1)])
    agg = aggregate(tmp_path)
    assert agg.latency.ttft_p50_ms == pytest.approx(15.0)  # median of 5 x 10 and 5 x 20
    assert agg.latency.ttft_mean_ms == pytest.approx(15.0)


def test_throttling_is_ored(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, thermal_throttle=ThermalThrottleInfo(detected=False, max_temperature_c=60)),
            result(1, thermal_throttle=ThermalThrottleInfo(detected=True, max_temperature_c=80)),
        ],
    )
    throttle = aggregate(tmp_path).thermal_throttle
    assert throttle.detected is True and throttle.max_temperature_c == 80


def test_throttle_durations_are_the_longest_of_the_common_window(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, thermal_throttle=throttle(thermal=2.0, power_cap=5.0, hw_slowdown=0.0)),
            result(1, thermal_throttle=throttle(thermal=1.0, power_cap=7.0, hw_slowdown=0.5)),
        ],
    )
    combined = aggregate(tmp_path).thermal_throttle
    assert combined.thermal_duration_s == 2.0
    assert combined.power_cap_duration_s == 7.0
    assert combined.hw_slowdown_duration_s == 0.5
    assert combined.thermal is True and combined.power is True and combined.hw_slowdown is True


def throttle(thermal: float, power_cap: float, hw_slowdown: float) -> ThermalThrottleInfo:
    return ThermalThrottleInfo(
        thermal=thermal > 0,
        power=power_cap > 0,
        hw_slowdown=hw_slowdown > 0,
        thermal_duration_s=thermal,
        power_cap_duration_s=power_cap,
        hw_slowdown_duration_s=hw_slowdown,
    )


def test_missing_process_is_refused_then_allowed_partial(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0)], expected=2)
    with pytest.raises(IncompleteExperiment, match="process 1: no completion marker .completed_1"):
        aggregate(tmp_path)
    assert not ResultsLayout(tmp_path).aggregated_path(EXP).exists()
    agg = aggregate(tmp_path, allow_partial=True)
    assert agg.aggregation.partial and agg.aggregation.missing_processes == [1]
    assert agg.aggregation.num_processes == 1 and agg.aggregation.expected_num_processes == 2


def test_results_beyond_the_expected_count_are_refused(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0), result(1), result(2)], expected=2)
    with pytest.raises(IncompleteExperiment, match="unexpected .completed_2.*unexpected process_2"):
        aggregate(tmp_path)


def test_result_of_another_experiment_is_refused(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0), result(1, experiment_id="other_1")])
    with pytest.raises(IncompleteExperiment, match="belongs to experiment other_1"):
        aggregate(tmp_path)


def test_windows_that_do_not_overlap_are_refused(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0), result(1, start=1100.0)])
    with pytest.raises(UnverifiedExperiment, match="do not overlap: process 1 started 90.00 s"):
        aggregate(tmp_path)
    agg = aggregate(tmp_path, allow_unverified=True)
    assert not agg.aggregation.temporal_overlap_verified


def test_windows_overlapping_by_less_than_half_are_refused(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0), result(1, start=1008.0)])
    with pytest.raises(UnverifiedExperiment, match="overlap by only 2.00 s"):
        aggregate(tmp_path)


def test_a_device_in_two_processes_is_refused(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, device="GPU-a", method="nvml_counter"),
            result(1, device="GPU-a", method="nvml_counter"),
        ],
    )
    with pytest.raises(
        UnverifiedExperiment, match="device GPU-a on h0 is claimed by processes 0, 1"
    ):
        aggregate(tmp_path)
    agg = aggregate(tmp_path, allow_unverified=True)
    assert not agg.aggregation.gpu_attribution_verified
    assert agg.aggregation.temporal_overlap_verified


def test_sibling_mig_instances_share_their_parent_gpu(tmp_path: Path) -> None:
    def on_mig(index: int, instance: str) -> RawProcessResult:
        r = result(index, device=instance, method="nvml_counter")
        (reading,) = r.energy_readings
        device = reading.devices[0].model_copy(update={"is_mig": True, "parent_uuid": "GPU-p"})
        update = {"energy_readings": [reading.model_copy(update={"devices": [device]})]}
        return r.model_copy(update=update)

    write_experiment(tmp_path, [on_mig(0, "MIG-1"), on_mig(1, "MIG-2")])
    with pytest.raises(
        UnverifiedExperiment, match="device GPU-p on h0 is claimed by processes 0, 1"
    ):
        aggregate(tmp_path)


def test_one_gpu_uuid_on_two_hosts_is_two_devices(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, host="a", device="GPU-a", method="nvml_counter"),
            result(1, host="b", device="GPU-a", method="nvml_counter"),
        ],
    )
    assert aggregate(tmp_path).aggregation.gpu_attribution_verified


def test_different_energy_methods_report_the_weakest(tmp_path: Path) -> None:
    write_experiment(
        tmp_path, [result(0, host="a", method="rapl"), result(1, host="b", method="estimate")]
    )
    agg = aggregate(tmp_path)
    assert agg.energy_method == "estimate"
    assert any("different methods" in w for w in agg.aggregation.warnings)


def flops(useful: float | None, executed: float | None) -> FlopsResult:
    return FlopsResult(
        method="analytic_2n_attn",
        total_flops=useful,
        flops_useful=useful,
        flops_executed=executed,
        non_embedding_params=None if useful is None else 1000,
        tokens_processed=250,
    )


def test_flops_are_summed_over_processes(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [result(0, flops=flops(1.5e9, 2.25e9)), result(1, flops=flops(0.5e9, 1.0e9))],
    )
    agg = aggregate(tmp_path)
    assert agg.total_flops == agg.flops_useful == 2.0e9
    assert agg.flops_executed == 3.25e9
    assert agg.flops_method == "analytic_2n_attn"


@pytest.mark.parametrize("unknown", [None, flops(None, None)], ids=["no-flops", "unknown-flops"])
def test_one_process_with_unknown_flops_makes_the_total_unknown(
    tmp_path: Path, unknown: FlopsResult | None
) -> None:
    write_experiment(tmp_path, [result(0, flops=flops(1.5e9, 2.25e9)), result(1, flops=unknown)])
    agg = aggregate(tmp_path)
    assert agg.total_flops is None
    assert agg.flops_useful is None and agg.flops_executed is None


def test_two_machines_with_one_hostname_each_count_their_machine_energy(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, host="node", host_id="boot:a", energy_j=100.0),
            result(1, host="node", host_id="boot:b", energy_j=120.0),
        ],
    )
    assert aggregate(tmp_path).energy_breakdown.raw_j == 220.0


def test_containers_on_one_kernel_count_its_machine_energy_once(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, host="c1", host_id="boot:a", energy_j=100.0),
            result(1, host="c2", host_id="boot:a", start=1000.01, energy_j=120.0),
        ],
    )
    assert aggregate(tmp_path).energy_breakdown.raw_j == 100.0


def test_one_gpu_claimed_from_two_containers_of_one_host_is_refused(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, host="c1", host_id="boot:a", device="GPU-a", method="nvml_counter"),
            result(1, host="c2", host_id="boot:a", device="GPU-a", method="nvml_counter"),
        ],
    )
    with pytest.raises(UnverifiedExperiment, match="device GPU-a on boot:a is claimed"):
        aggregate(tmp_path)


def gpu_process(index: int, uuid: str, energy_j: float, idle_w: float, std_w: float, **kw):
    """A schema 2 process on a GPU: a measured GPU component and a host CPU component."""
    window_s = kw.pop("window_s", 10.0)
    method = kw.pop("method", "nvml_counter")
    gpu = ComponentEnergy.measured(
        "gpu", method, "device", [uuid], energy_j, window_s,
        baseline_power_w=idle_w, baseline_std_w=std_w, baseline_method="fresh",
    )  # fmt: skip
    cpu = ComponentEnergy.measured(
        "cpu", "estimate", "machine", ["cpu"], 50.0 + index, window_s,
        baseline_power_w=2.0, baseline_std_w=0.1, baseline_method="fresh",
    )  # fmt: skip
    reading = EnergyMeasurement(
        method=method,
        host="h0",
        devices=[DeviceEnergy(device_id=uuid, kind="gpu", scope="device", energy_j=energy_j)],
        window_start_unix_s=1000.0,
        window_end_unix_s=1000.0 + window_s,
        duration_s=window_s,
    )
    return result(
        index,
        device=uuid,
        method=method,
        energy_readings=[reading],
        energy_components=[gpu, cpu],
        energy_window_start_unix_s=1000.0,
        energy_window_end_unix_s=1000.0 + window_s,
        energy_window_s=window_s,
        **kw,
    )


def test_the_aggregated_breakdown_recomputes_from_its_stored_figures(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            gpu_process(0, "GPU-a", 3000.0, 60.0, 3.0, window_s=10.0),
            gpu_process(1, "GPU-b", 2500.0, 55.0, 4.0, window_s=10.2),
        ],
    )
    agg = aggregate(tmp_path)
    b = agg.energy_breakdown
    assert b.boundary == "gpu" and b.raw_j == 5500.0
    assert b.baseline_power_w == 115.0
    assert b.baseline_std_w == pytest.approx(5.0)  # root sum of squares
    assert b.baseline_energy_j == pytest.approx(60.0 * 10.0 + 55.0 * 10.2)
    assert b.adjusted_j == pytest.approx(max(0.0, b.raw_j - b.baseline_energy_j))
    assert agg.energy_per_output_token_j == pytest.approx(b.raw_j / agg.output_tokens)
    boundaries = {x.name: x for x in agg.energy_boundaries}
    components = {c.component: c for c in agg.energy_components}
    assert boundaries["gpu"].energy_j == components["gpu"].energy_j == 5500.0
    # the CPU is the host's: one reading (the longest window), not one per process
    assert components["cpu"].energy_j == 51.0
    assert boundaries["node"].energy_j == 5500.0 + 51.0
    assert boundaries["node"].above_idle_j == pytest.approx(
        components["gpu"].above_idle_j + components["cpu"].above_idle_j
    )


def test_the_aggregated_method_is_the_weakest_of_any_process(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            gpu_process(0, "GPU-a", 3000.0, 60.0, 3.0),
            gpu_process(1, "GPU-b", 2500.0, 55.0, 4.0, method="nvml_power_integral"),
        ],
    )
    agg = aggregate(tmp_path)
    assert agg.energy_method == "nvml_power_integral"
    assert {c.component: c.method for c in agg.energy_components}["gpu"] == "nvml_power_integral"


def test_a_schema_1_gpu_process_that_fell_back_to_cpu_energy_nulls_the_gpu_total(
    tmp_path: Path,
) -> None:
    # Schema 1: under `auto`, process 1's NVML failed and it recorded its host's RAPL.
    write_experiment(
        tmp_path,
        [
            result(0, host="a", device="GPU-a", method="nvml_counter", energy_j=300.0),
            result(1, host="b", method="rapl", energy_j=80.0).model_copy(
                update={"device": "cuda:0"}
            ),
        ],
    )
    boundaries = {b.name: b for b in aggregate(tmp_path).energy_boundaries}
    assert boundaries["gpu"].energy_j is None and boundaries["node"].energy_j is None
    assert boundaries["cpu_dram"].energy_j == 80.0


def cpu_and_dram_process(index: int, host_id: str, dram_j: float | None, with_dram: bool):
    components = [ComponentEnergy.measured("cpu", "rapl", "machine", ["package-0"], 100.0, 10.0)]
    if with_dram:
        components.append(
            ComponentEnergy.measured("dram", "rapl", "machine", ["dram-0"], dram_j, 10.0)
        )
    return result(index, host=host_id, host_id=host_id, energy_components=components)


def test_a_component_some_hosts_cannot_measure_is_named_as_partial(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [cpu_and_dram_process(0, "intel", 20.0, True), cpu_and_dram_process(1, "amd", None, False)],
    )
    boundaries = {b.name: b for b in aggregate(tmp_path).energy_boundaries}
    cpu_dram = boundaries["cpu_dram"]
    assert cpu_dram.energy_j == 220.0 and "dram" in cpu_dram.unmeasured
    assert "dram measured on 1 of 2 hosts" in cpu_dram.note


def test_a_readable_machine_reading_is_preferred_to_a_longer_unreadable_one(
    tmp_path: Path,
) -> None:
    unread = ComponentEnergy.measured("cpu", "rapl", "machine", ["package-0"], None, 10.5)
    read = ComponentEnergy.measured("cpu", "rapl", "machine", ["package-0"], 95.0, 10.0)
    write_experiment(
        tmp_path,
        [
            result(0, host_id="h", energy_components=[unread], duration=10.5),
            result(1, host_id="h", energy_components=[read], start=1000.2),
        ],
    )
    components = {c.component: c for c in aggregate(tmp_path).energy_components}
    assert components["cpu"].energy_j == 95.0


def phase_record(full_j: float, prefill_j: float) -> PhaseSubtraction:
    """A process's subtraction record: 4 requests of 100 prompt tokens, 20 output tokens."""
    return PhaseSubtraction.build(
        boundary="gpu",
        full_j=full_j,
        prefill_j=prefill_j,
        full_above_idle_j=None,
        prefill_above_idle_j=None,
        full_window_s=12.0,
        prefill_window_s=11.0,
        num_requests=4,
        prefill_tokens=400,
        prefill_output_tokens=4,
        full_output_tokens=20,
    )


def test_processes_on_their_own_gpus_are_summed(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, device="GPU-a", phase_subtraction=phase_record(100.0, 30.0)),
            result(1, device="GPU-b", phase_subtraction=phase_record(60.0, 20.0)),
        ],
    )
    phase = aggregate(tmp_path).phase_subtraction
    assert (phase.full_j, phase.prefill_j, phase.decode_j) == (160.0, 50.0, 110.0)
    assert (phase.num_requests, phase.prefill_tokens, phase.decode_tokens) == (8, 800, 32)
    assert phase.prefill_window_s == 11.0
    assert phase.decode_j_per_token == pytest.approx(110.0 / 32)


def test_processes_sharing_a_host_reading_give_no_sum(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [result(i, phase_subtraction=phase_record(100.0, 30.0)) for i in (0, 1)],
    )
    aggregated = aggregate(tmp_path)
    assert aggregated.phase_subtraction is None
    assert any("phase_subtraction" in w for w in aggregated.aggregation.warnings)
