"""The end-of-run table: FLOPs, throttling and latency rows."""

from __future__ import annotations

import pytest

from llenergymeasure.cli.summary import print_summary
from llenergymeasure.domain.experiment import AggregatedResult, AggregationInfo
from llenergymeasure.domain.metrics import LatencyStats, ThermalThrottleInfo


def aggregated(**fields: object) -> AggregatedResult:
    return AggregatedResult(
        experiment_id="exp_20260101T000000_abcd",
        config_name="exp",
        model_name="m",
        aggregation=AggregationInfo(
            method="sum",
            num_processes=1,
            expected_num_processes=1,
            temporal_overlap_verified=True,
            gpu_attribution_verified=True,
        ),
        hosts=["h"],
        inference_start_unix_s=0.0,
        inference_end_unix_s=1.0,
        wall_window_s=1.0,
        num_requests=1,
        input_tokens=1,
        output_tokens=1,
        **fields,
    )


def flops_row(capsys: pytest.CaptureFixture[str], result: AggregatedResult) -> str:
    print_summary(result, None, None)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "FLOPs" in line]
    return " ".join(row.replace("│", " ").split())


def test_summary_shows_useful_and_executed_flops(capsys: pytest.CaptureFixture[str]) -> None:
    result = aggregated(
        total_flops=1.5e12,
        flops_useful=1.5e12,
        flops_executed=2.25e12,
        flops_method="analytic_2n_attn",
    )
    assert flops_row(capsys, result) == (
        "FLOPs useful / executed 1.500e+12 / 2.250e+12 (analytic_2n_attn)"
    )


def test_summary_of_an_older_result_shows_its_one_total(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = aggregated(total_flops=7.0e11, flops_method="palm_2n")
    assert flops_row(capsys, result) == "FLOPs useful / executed 7.000e+11 (palm_2n)"


def test_summary_without_flops_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert flops_row(capsys, aggregated()) == "FLOPs useful / executed n/a / n/a"


def summary_row(capsys: pytest.CaptureFixture[str], result: AggregatedResult, name: str) -> str:
    print_summary(result, None, None)
    (row,) = [line for line in capsys.readouterr().out.splitlines() if name in line]
    return " ".join(row.replace("│", " ").split())


def test_summary_keeps_throttling_classes_apart(capsys: pytest.CaptureFixture[str]) -> None:
    throttle = ThermalThrottleInfo(
        thermal_duration_s=0.0, power_cap_duration_s=4.2, hw_slowdown_duration_s=0.5
    )
    row = summary_row(capsys, aggregated(thermal_throttle=throttle), "throttling")
    assert row == "throttling (s) thermal 0.0, power cap 4.2, hw slowdown 0.5"
    row = summary_row(capsys, aggregated(), "throttling")
    assert row == "throttling (s) thermal n/a, power cap n/a, hw slowdown n/a"


def test_summary_shows_last_token_and_batch_return(capsys: pytest.CaptureFixture[str]) -> None:
    latency = LatencyStats(e2e_p50_ms=100.0, batch_return_p50_ms=320.0)
    row = summary_row(capsys, aggregated(latency=latency), "e2e")
    assert row == "e2e (last token) / batch p50 100.0 ms / 320.0 ms"
