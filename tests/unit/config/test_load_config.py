"""The `load:` section: its defaults leave today's offline runs as they were, and every
combination that cannot run is a config error naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config import load_config
from llenergymeasure.config.load import LoadConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.errors import ConfigError

from llem_testing import tiny_config_dict, write_yaml


def test_offline_is_the_default_and_a_dumped_config_reads_back(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path)))
    assert config.load.mode == "offline"
    again = ExperimentConfig.model_validate(config.model_dump(mode="json"))
    assert again == config


@pytest.mark.parametrize(
    "load",
    [
        {"mode": "rate", "rate_per_s": 2.0, "num_requests": 100},
        {"mode": "rate", "rate_per_s": 0.5, "duration_s": 60.0, "arrival": "constant"},
        {
            "mode": "rate",
            "rate_per_s": 4.0,
            "num_requests": 10,
            "arrival": "gamma",
            "burstiness": 0.5,
        },
        {"mode": "concurrency", "concurrency": 8, "duration_s": 30.0},
        {"mode": "trace", "trace": "arrivals.jsonl"},
        {"mode": "trace", "trace": "arrivals.jsonl", "duration_s": 10.0},
        {
            "mode": "rate",
            "rate_per_s": 1.0,
            "num_requests": 5,
            "slo": {"ttft_ms": 200.0, "tpot_ms": 50.0},
            "endpoint": "http://127.0.0.1:8000/v1",
        },
        {
            "mode": "concurrency",
            "concurrency": 2,
            "num_requests": 5,
            "endpoint": "http://localhost:8000/v1",
        },
        {
            "mode": "concurrency",
            "concurrency": 2,
            "num_requests": 5,
            "endpoint": "http://[::1]:8000/v1",
        },
        {
            "mode": "concurrency",
            "concurrency": 2,
            "num_requests": 5,
            "endpoint": "http://10.1.2.3:8000/v1",
            "allow_remote_endpoint": True,
        },
    ],
)
def test_valid_loads_round_trip(load: dict) -> None:
    parsed = LoadConfig.model_validate(load)
    assert LoadConfig.model_validate(parsed.model_dump(mode="json")) == parsed


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ({"mode": "rate", "num_requests": 4}, "load: mode rate needs rate_per_s"),
        ({"mode": "rate", "rate_per_s": 1.0}, "load: mode rate needs num_requests or duration_s"),
        ({"mode": "concurrency", "num_requests": 4}, "load: mode concurrency needs concurrency"),
        ({"mode": "trace"}, "load: mode trace needs trace"),
        ({"rate_per_s": 2.0}, "load: rate_per_s applies to mode rate"),
        (
            {"mode": "concurrency", "concurrency": 2, "num_requests": 3, "arrival": "constant"},
            "load: arrival applies to mode rate",
        ),
        (
            {"mode": "trace", "trace": "t.jsonl", "num_requests": 3},
            "load: num_requests applies to mode concurrency or rate",
        ),
        ({"slo": {"ttft_ms": 100.0}}, "load: slo applies to mode"),
        (
            {"mode": "rate", "rate_per_s": 1.0, "num_requests": 3, "duration_s": 3.0},
            "give num_requests or duration_s, not both",
        ),
        (
            {"mode": "rate", "rate_per_s": 1.0, "num_requests": 3, "arrival": "gamma"},
            "arrival gamma needs burstiness",
        ),
        (
            {"mode": "rate", "rate_per_s": 1.0, "num_requests": 3, "burstiness": 2.0},
            "burstiness applies to arrival gamma, not poisson",
        ),
        ({"mode": "rate", "rate_per_s": 0.0, "num_requests": 3}, "load.rate_per_s: Input should"),
        (
            {"mode": "rate", "rate_per_s": 1.0, "num_requests": 3, "endpoint": "127.0.0.1:8000"},
            "endpoint: expected http://127.0.0.1:PORT/v1",
        ),
        (
            {
                "mode": "rate",
                "rate_per_s": 1.0,
                "num_requests": 3,
                "endpoint": "http://127.0.0.1/v1",
            },
            "endpoint: expected http://127.0.0.1:PORT/v1",
        ),
        (
            {
                "mode": "rate",
                "rate_per_s": 1.0,
                "num_requests": 3,
                "endpoint": "http://gpu-box:8000/v1",
            },
            "gpu-box is not a loopback address",
        ),
        (
            {
                "mode": "rate",
                "rate_per_s": 1.0,
                "num_requests": 3,
                "endpoint": "http://192.168.0.7:8000/v1",
            },
            "192.168.0.7 is not a loopback address",
        ),
        (
            {"mode": "rate", "rate_per_s": 1.0, "num_requests": 3, "rate": 2.0},
            "load.rate: unknown field",
        ),
        (
            {"mode": "rate", "rate_per_s": 1.0, "num_requests": 3, "slo": {"ttft_ms": -1.0}},
            "load.slo.ttft_ms: Input should be greater than 0",
        ),
    ],
)
def test_bad_loads_name_the_field(tmp_path: Path, load: dict, expected: str) -> None:
    path = write_yaml(tmp_path / "bad.yaml", tiny_config_dict(tmp_path, load=load))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


@pytest.mark.parametrize("engine", [{}, {"engine": "transformers"}])
def test_a_load_the_static_engine_cannot_serve_is_refused(tmp_path: Path, engine: dict) -> None:
    load = {"mode": "concurrency", "concurrency": 2, "num_requests": 4}
    path = write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path, load=load, **engine))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}: load: mode concurrency: engine transformers serves mode offline only; "
        "requests arriving over time need engine transformers-cb, vllm, or load.endpoint"
    )


@pytest.mark.parametrize(
    "sections",
    [
        {"engine": "transformers-cb"},
        {"engine": "vllm", "vllm": {"max_num_seqs": 4, "enable_prefix_caching": True}},
    ],
)
def test_a_continuous_batching_engine_serves_every_load_mode(
    tmp_path: Path, sections: dict
) -> None:
    loads = [
        {"mode": "rate", "rate_per_s": 4.0, "num_requests": 8},
        {"mode": "concurrency", "concurrency": 2, "duration_s": 5.0},
        {"mode": "trace", "trace": str(tmp_path / "trace.jsonl")},
    ]
    for load in loads:
        data = tiny_config_dict(tmp_path, generation={"batch_size": 1}, load=load, **sections)
        config = load_config(write_yaml(tmp_path / "c.yaml", data))
        assert (config.engine, config.load.mode) == (sections["engine"], load["mode"])


def test_an_override_is_blamed_for_its_load_field(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path))
    with pytest.raises(ConfigError, match=r"--set load.rate_per_s=3: load: rate_per_s applies"):
        load_config(path, ["load.rate_per_s=3"])
