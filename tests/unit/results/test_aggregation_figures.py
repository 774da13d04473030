"""Aggregated figures that a plausible mistake would change: inputs chosen to tell them apart.

Each input is picked so that the right rule and its likely wrong neighbour give
different numbers (the wall window against the longest process, pooled percentiles
against averaged ones, the longest throttle against the shortest, raw against adjusted
energy, an unread energy against 0 J).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_aggregation import aggregate, result, write_experiment

from llenergymeasure.domain.metrics import (
    DeviceEnergy,
    LatencySamples,
    MeasurementWarning,
    ThermalThrottleInfo,
)
from llenergymeasure.errors import IncompleteExperiment, UnverifiedExperiment
from llenergymeasure.results.layout import (
    process_result_path,
    write_marker,
    write_model,
)


def test_the_wall_window_runs_from_the_first_start_to_the_last_end(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, start=1000.0, duration=10.0, output_tokens=56),
            result(1, start=1004.0, duration=10.0, output_tokens=70),
        ],
    )
    agg = aggregate(tmp_path)
    assert agg.wall_window_s == pytest.approx(14.0)  # not 10 s, the longest process
    assert agg.total_tokens_per_second == pytest.approx(126 / 14.0)
    assert agg.avg_tokens_per_second == pytest.approx((5.6 + 7.0) / 2)


def test_latency_percentiles_pool_requests_rather_than_average_processes(
    tmp_path: Path,
) -> None:
    few = LatencySamples(ttft_ms=[1.0, 2.0, 3.0], itl_ms=[1.0], e2e_ms=[5.0, 6.0, 7.0])
    many = LatencySamples(
        ttft_ms=[10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0],
        itl_ms=[2.0, 4.0, 6.0],
        e2e_ms=[100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0],
    )
    write_experiment(tmp_path, [result(0, latency_samples=few), result(1, latency_samples=many)])
    latency = aggregate(tmp_path).latency
    # pooled: 1, 2, 3, 10, 20, ..., 70; the mean of the two medians would be 21
    assert latency.ttft_p50_ms == pytest.approx(25.0)
    assert latency.ttft_mean_ms == pytest.approx(286 / 10)
    assert latency.e2e_p50_ms == pytest.approx(250.0)  # averaged medians: 203
    assert latency.itl_p50_ms == pytest.approx(3.0)
    assert latency.num_requests == 10


def test_a_result_holding_another_ranks_index_is_refused(tmp_path: Path) -> None:
    experiment_dir = write_experiment(tmp_path, [result(0)], expected=2)
    data = write_model(process_result_path(experiment_dir, 1), result(0, start=1001.0))
    write_marker(experiment_dir, 1, data)
    with pytest.raises(IncompleteExperiment, match="process_1.json holds process_index 0"):
        aggregate(tmp_path)


def test_the_throttle_duration_is_the_longest_of_the_processes(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, thermal_throttle=ThermalThrottleInfo(detected=True, duration_s=1.5)),
            result(1, thermal_throttle=ThermalThrottleInfo(detected=True, duration_s=4.0)),
        ],
    )
    assert aggregate(tmp_path).thermal_throttle.duration_s == 4.0


def test_per_process_energy_is_the_raw_energy(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, device="GPU-a", method="nvml_counter", energy_j=300.0),
            result(1, device="GPU-b", method="nvml_counter", energy_j=310.0),
        ],
    )
    agg = aggregate(tmp_path)
    assert [p.energy_j for p in agg.processes] == [300.0, 310.0]  # adjusted: 290, 300
    assert agg.energy_breakdown.adjusted_j == pytest.approx(590.0)  # both processes


def test_an_unread_energy_makes_the_sums_unknown_and_keeps_its_warning(tmp_path: Path) -> None:
    unread = result(0, device="GPU-a", method="nvml_counter")
    (reading,) = unread.energy_readings
    device = reading.devices[0].model_copy(update={"energy_j": None})
    unread = unread.model_copy(
        update={
            "energy_readings": [reading.model_copy(update={"devices": [device]})],
            "energy_breakdown": unread.energy_breakdown.model_copy(
                update={"raw_j": None, "adjusted_j": None}
            ),
            "warnings": [
                MeasurementWarning(
                    code="energy_incomplete", message="GPU-a unread", remediation="re-run"
                )
            ],
        }
    )
    write_experiment(
        tmp_path, [unread, result(1, device="GPU-b", method="nvml_counter", energy_j=310.0)]
    )
    agg = aggregate(tmp_path)
    assert agg.energy_breakdown.raw_j is None and agg.energy_breakdown.adjusted_j is None
    assert agg.energy_per_output_token_j is None
    assert [p.energy_j for p in agg.processes] == [None, 310.0]
    assert "energy_incomplete" in [w.code for w in agg.warnings]


def test_a_reading_of_the_wrong_scope_is_refused(tmp_path: Path) -> None:
    """A GPU reading marked machine-level could be counted neither per device nor per host."""
    mixed = result(0, device="GPU-a", method="nvml_counter")
    (reading,) = mixed.energy_readings
    gpu_as_machine = reading.devices[0].model_copy(update={"scope": "machine"})
    rapl = DeviceEnergy(device_id="package-0", kind="cpu", scope="machine", energy_j=50.0)
    mixed = mixed.model_copy(
        update={"energy_readings": [reading.model_copy(update={"devices": [gpu_as_machine, rapl]})]}
    )
    write_experiment(tmp_path, [mixed, result(1, device="GPU-b", method="nvml_counter")])
    with pytest.raises(
        UnverifiedExperiment, match=r"process 0 mixes device- and machine-level .*gpu \(machine\)"
    ):
        aggregate(tmp_path)
    agg = aggregate(tmp_path, allow_unverified=True)
    assert not agg.aggregation.gpu_attribution_verified
    assert any("mixes device- and machine-level" in w for w in agg.aggregation.warnings)


def test_a_gpu_and_its_hosts_cpu_in_one_process_are_accepted(tmp_path: Path) -> None:
    both = result(0, device="GPU-a", method="nvml_counter")
    (reading,) = both.energy_readings
    rapl = DeviceEnergy(device_id="package-0", kind="cpu", scope="machine", energy_j=50.0)
    both = both.model_copy(
        update={
            "energy_readings": [reading.model_copy(update={"devices": [*reading.devices, rapl]})]
        }
    )
    write_experiment(tmp_path, [both, result(1, device="GPU-b", method="nvml_counter")])
    assert aggregate(tmp_path).aggregation.gpu_attribution_verified


def test_a_process_without_a_rate_is_left_out_of_the_mean_rate(tmp_path: Path) -> None:
    write_experiment(
        tmp_path,
        [
            result(0, output_tokens=80),
            result(1, start=1001.0, output_tokens=60, tokens_per_second=None),
        ],
    )
    agg = aggregate(tmp_path)
    assert agg.avg_tokens_per_second == pytest.approx(8.0)  # not (8 + 0) / 2
    assert agg.total_tokens_per_second == pytest.approx(140 / 11.0)
