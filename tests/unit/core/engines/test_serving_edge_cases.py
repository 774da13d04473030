"""Edge cases of the engines and loads found in review: each test names the behaviour."""

from __future__ import annotations

import pytest

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.assembly import load_summary
from llenergymeasure.core.engines.base import EngineOutput
from llenergymeasure.core.host import CpuTimeFigures
from llenergymeasure.core.window import WindowResult
from llenergymeasure.domain.load import LoadRun, RequestRecord
from llenergymeasure.domain.metrics import LatencySamples

ENDPOINT = {"mode": "concurrency", "concurrency": 40, "num_requests": 40}
ENDPOINT_URL = "http://127.0.0.1:8000/v1"


def endpoint_config(**extra: object) -> ExperimentConfig:
    load = {**ENDPOINT, "endpoint": ENDPOINT_URL}
    return ExperimentConfig(name="x", model={"name": "m"}, load=load, **extra)


def test_an_endpoint_has_no_known_batch_so_its_steady_window_is_not_batch_full() -> None:
    # 40 requests in flight on a server whose batch llem does not know: none reports an
    # admission. The batch_full rule must not apply a made-up maximum batch (the
    # transformers_cb default of 32) to a vLLM server.
    records = [
        RequestRecord(
            request_id=i,
            planned_s=None,
            arrival_s=0.001 * i,
            first_token_s=0.5 + 0.01 * i,
            last_token_s=2.0 + 0.05 * i,
            output_tokens=10,
        )
        for i in range(40)
    ]
    run = LoadRun(mode="concurrency", start_monotonic_s=100.0, end_s=4.0, requests=records)
    window = WindowResult(
        value=EngineOutput(requests=[], latency=LatencySamples(), load_run=run),
        readings=[],
        samples=[],
        sampler_errors={},
        start_mono_s=100.0,
        start_unix_s=0.0,
        busy_s=4.0,
        window_s=4.0,
        cpu_time=CpuTimeFigures(0.0, 0.0),
    )
    summary = load_summary(window, 400.0, endpoint_config())
    assert summary is not None
    assert summary.steady_window.rule == "arrivals_and_completions"


@pytest.mark.parametrize(
    "extra",
    [
        {"engine": "transformers-cb", "transformers_cb": {"max_requests_per_batch": 4}},
        {"generation": {"batch_size": 8}},
        {"prompts": {"truncate": True}},
        {"generation": {"do_sample": True, "top_k": 5}},
    ],
    ids=["cb-options", "batch-size", "truncate", "top-k"],
)
def test_options_an_endpoint_ignores_are_refused(extra: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        endpoint_config(**extra)


def test_min_new_tokens_with_transformers_cb_is_refused() -> None:
    # transformers' continuous batching drops MinNewTokensLengthLogitsProcessor
    # (supports_continuous_batching = False): the setting would be silently ignored.
    with pytest.raises(ValueError):
        ExperimentConfig(
            name="x",
            model={"name": "m"},
            engine="transformers-cb",
            generation={"min_new_tokens": 8, "max_new_tokens": 16},
        )


def test_an_endpoint_model_name_is_the_servers_not_a_local_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `vllm serve ... --served-model-name llama`: the name is the server's, and its weights
    # need not be on this host; llem tokenises nothing for an endpoint.
    from llenergymeasure.orchestration.launcher import LaunchOptions, check_experiment

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = ExperimentConfig(
        name="x",
        model={"name": "llama"},
        prompts={"num_prompts": 2},
        load={"mode": "rate", "rate_per_s": 1.0, "num_requests": 2, "endpoint": ENDPOINT_URL},
    )
    check_experiment(config, LaunchOptions())


def test_window_tokens_follow_the_counted_tokens_not_the_streamed_chunks() -> None:
    # An endpoint request: usage says 10 completion tokens, the stream carried text in 5
    # chunks (several tokens a chunk, or an EOS chunk without text). Over the whole run
    # the window must hold all 10 tokens, as output_tokens and J/token do.
    from llenergymeasure.core.load.steady_state import window_figures

    record = RequestRecord(
        request_id=0,
        planned_s=0.0,
        arrival_s=0.0,
        first_token_s=0.1,
        last_token_s=0.5,
        output_tokens=10,
        token_times_s=[0.1, 0.2, 0.3, 0.4, 0.5],
    )
    figures = window_figures([record], (0.0, 1.0), 100.0, (0.0, 1.0), [])
    assert figures.output_tokens == pytest.approx(10)


def test_a_misspelt_engine_is_one_problem_not_two() -> None:
    from llenergymeasure.config.loader import validate_config
    from llenergymeasure.errors import ConfigError

    data = {
        "name": "x",
        "model": {"name": "m"},
        "engine": "vllmm",
        "load": {"mode": "rate", "rate_per_s": 1.0, "num_requests": 4},
    }
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    message = str(caught.value)
    assert message.startswith("config: engine: ") and "engine None" not in message
    assert "serves mode offline only" not in message  # the load is no second problem


def test_a_window_whose_body_raises_stops_its_sampler() -> None:
    import threading

    from llenergymeasure.core.window import MeasurementWindow, window_sample_sources

    def body() -> None:
        raise RuntimeError("the engine failed inside the window")

    window = MeasurementWindow([], window_sample_sources(None), 50)
    with pytest.raises(RuntimeError):
        window.run(body)
    assert not any(t.name == "llem-sampler" and t.is_alive() for t in threading.enumerate())


def test_processes_assigned_on_a_load_config_are_refused_as_when_given() -> None:
    # validate_assignment is on, but the check lives in load's field validator, which an
    # assignment to `processes` does not run (the public API hands configs around).
    config = ExperimentConfig(
        name="x",
        model={"name": "m"},
        engine="transformers-cb",
        load={"mode": "rate", "rate_per_s": 1.0, "num_requests": 4},
    )
    with pytest.raises(ValueError):
        config.processes = 2
