"""Requests arriving over time (`load:`) served by the real `transformers-cb` engine.

The tiny Llama serves a seeded Poisson load twice and a closed-loop concurrency load
once, through the one lifecycle; the records are the load runner's, the figures the
result's.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.engines import create_engine
from llenergymeasure.core.engines.cb_load import load_request_name
from llenergymeasure.core.lifecycle import RunContext, run_measured
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.errors import ConfigError
from llenergymeasure.prompts import load_prompts

from llem_testing import one_torch_thread, tiny_config_dict

RATE_PER_S = 40.0
REQUESTS = 24
CONCURRENCY = 3


def load_config(root: Path, load: dict, **sections: object):
    data = tiny_config_dict(
        root / "results",
        engine="transformers-cb",
        generation={"max_new_tokens": 6, "batch_size": 1},
        transformers_cb={"max_requests_per_batch": 8},
        measurement={"baseline": {"enabled": False}, "energy": {"backend": "estimate"}},
        load=load,
    )
    return validate_config({**data, **sections})


def serve(config, engines: list | None = None) -> RawProcessResult:
    """One measured run; `engines` (where given) keeps the engine, for its recorded steps."""
    with one_torch_thread():
        engine = create_engine(config, "cpu")
        run = run_measured(
            engine, config, RunContext(experiment_id="load"), load_prompts(config.prompts)
        )
    if engines is not None:
        engines.append(engine)
    return run.result


@pytest.fixture(scope="module")
def poisson_runs(tmp_path_factory: pytest.TempPathFactory) -> list[RawProcessResult]:
    root = tmp_path_factory.mktemp("poisson")
    load = {
        "mode": "rate",
        "rate_per_s": RATE_PER_S,
        "num_requests": REQUESTS,
        "slo": {"ttft_ms": 60_000, "tpot_ms": 60_000},
    }
    engines: list = []
    runs = [serve(load_config(root, load), engines) for _ in range(2)]
    POISSON_ENGINES[:] = engines
    return runs


POISSON_ENGINES: list = []


@pytest.fixture(scope="module")
def concurrent_run(tmp_path_factory: pytest.TempPathFactory) -> RawProcessResult:
    root = tmp_path_factory.mktemp("concurrency")
    load = {"mode": "concurrency", "concurrency": CONCURRENCY, "num_requests": REQUESTS}
    return serve(load_config(root, load))


def test_a_seeded_poisson_load_arrives_at_the_same_times_every_run(
    poisson_runs: list[RawProcessResult],
) -> None:
    first, second = ([r.planned_s for r in run.load_requests] for run in poisson_runs)
    assert len(first) == REQUESTS and first == second
    # The schedule's rate over n - 1 gaps has a relative sd of 1 / sqrt(n - 1).
    summary = poisson_runs[0].load
    sd = 1.0 / math.sqrt(REQUESTS - 1)
    assert abs(summary.planned_rate_per_s / RATE_PER_S - 1.0) < 4 * sd
    # The hand-overs follow the schedule: the achieved rate is the planned one, within
    # the runner's dispatch lag.
    assert summary.achieved_rate_per_s == pytest.approx(summary.planned_rate_per_s, rel=0.1)
    assert all(r.dispatch_lag_ms >= 0 for r in poisson_runs[0].load_requests)


def test_every_request_is_recorded_with_its_tokens_and_times(
    poisson_runs: list[RawProcessResult],
) -> None:
    result = poisson_runs[0]
    records = result.load_requests
    assert result.num_requests == REQUESTS == len(records) == result.load.completed
    assert result.output_tokens == sum(r.output_tokens for r in records) > 0
    assert result.input_tokens == sum(r.input_tokens for r in records)
    for r in records:
        assert r.arrival_s <= r.scheduled_s <= r.first_token_s <= r.last_token_s
        assert len(r.token_times_s) == r.output_tokens
    # Latency counts from the arrival, so it includes the queueing delay.
    assert sorted(result.latency_samples.ttft_ms) == pytest.approx(
        sorted(r.ttft_ms for r in records)
    )


def test_the_engine_steps_hold_each_prompt_once_and_each_later_token_once(
    poisson_runs: list[RawProcessResult],
) -> None:
    records = poisson_runs[0].load_requests
    numbers = {load_request_name(r.request_id): r.request_id for r in records}
    steps = POISSON_ENGINES[0].steps.steps(numbers, 0.0)
    prefill, decode = Counter(), Counter()
    for step in steps:
        prefill.update(step.prefill_tokens)
        decode.update(step.decode_tokens)
    # The prefill step also samples the first token; each later token is a decode step.
    assert {r.request_id: prefill[r.request_id] for r in records} == {
        r.request_id: r.input_tokens for r in records
    }
    assert {r.request_id: decode[r.request_id] for r in records} == {
        r.request_id: r.output_tokens - 1 for r in records
    }
    # transformers runs one pass at a time: the steps follow each other.
    assert all(a.end_s <= b.start_s for a, b in zip(steps, steps[1:], strict=False))
    assert max(len(s.prefill_tokens) + len(s.decode_tokens) for s in steps) > 1


def test_the_window_energy_is_split_into_phases_and_requests_that_add_up(
    poisson_runs: list[RawProcessResult],
) -> None:
    result = poisson_runs[0]
    attributed = result.load.attributed
    window_j = result.energy_breakdown.raw_j
    assert attributed.window_j == pytest.approx(window_j, rel=1e-12)
    assert attributed.prefill_j + attributed.decode_j == pytest.approx(window_j, rel=1e-9)
    assert sum(r.energy_j for r in attributed.requests) == pytest.approx(window_j, rel=1e-9)
    assert sorted(r.request_id for r in attributed.requests) == list(range(REQUESTS))
    assert all(r.prefill_j > 0 and r.decode_j > 0 for r in attributed.requests)


def test_goodput_under_a_loose_slo_counts_every_token(poisson_runs: list[RawProcessResult]) -> None:
    result = poisson_runs[0]
    goodput = result.load.goodput
    assert goodput.good_requests == REQUESTS
    assert goodput.good_output_tokens == result.output_tokens
    assert goodput.energy_j == result.energy_breakdown.raw_j
    assert result.load.whole.energy_j == pytest.approx(result.energy_breakdown.raw_j)


def test_a_concurrency_load_never_has_more_requests_in_flight(
    concurrent_run: RawProcessResult,
) -> None:
    records = concurrent_run.load_requests
    assert len(records) == REQUESTS and all(r.planned_s is None for r in records)
    edges = sorted(
        [(r.arrival_s, 1) for r in records] + [(r.last_token_s, -1) for r in records],
        key=lambda edge: (edge[0], edge[1]),
    )
    in_flight, most = 0, 0
    for _, step in edges:
        in_flight += step
        most = max(most, in_flight)
    assert most == CONCURRENCY


@pytest.mark.parametrize(
    ("sections", "extra_load", "message"),
    [
        ({"processes": 2}, {}, "mode rate runs in one process"),
        ({}, {"endpoint_gpus": [0]}, "endpoint_gpus applies to an endpoint"),
        (
            {"engine": "transformers", "transformers_cb": None},
            {},
            "engine transformers serves mode offline only",
        ),
    ],
)
def test_a_load_the_deployment_cannot_serve_is_refused(
    tmp_path: Path, sections: dict, extra_load: dict, message: str
) -> None:
    load = {"mode": "rate", "rate_per_s": 5.0, "num_requests": 4, **extra_load}
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path, load, **sections)


def test_prefix_caching_when_asked_computes_less_prefill_than_the_prompts_hold(
    tmp_path: Path,
) -> None:
    # The load repeats the prompts: with caching on, a repeated prompt's pages are reused.
    load = {"mode": "concurrency", "concurrency": 2, "num_requests": 24}
    engines: list = []
    config = load_config(
        tmp_path,
        load,
        transformers_cb={"max_requests_per_batch": 8, "enable_prefix_caching": True},
    )
    records = serve(config, engines).load_requests
    numbers = {load_request_name(r.request_id): r.request_id for r in records}
    computed = sum(sum(s.prefill_tokens.values()) for s in engines[0].steps.steps(numbers, 0.0))
    assert 0 < computed < sum(r.input_tokens for r in records)
