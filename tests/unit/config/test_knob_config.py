"""The batching, attention, compile and KV-cache knobs: strict, refused where not honoured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.config.campaign import plan_campaign
from llenergymeasure.config.loader import validate_config
from llenergymeasure.errors import ConfigError
from llenergymeasure.results.compare import varying_parameters

from llem_testing import tiny_config_dict, write_yaml


def campaign_file(tmp_path: Path, sweep: dict[str, list[Any]]) -> Path:
    base = tiny_config_dict(tmp_path / "results")
    base.pop("name")
    return write_yaml(tmp_path / "c.yaml", {"campaign_name": "knobs", "base": base, "sweep": sweep})


def test_every_knob_is_a_sweep_axis(tmp_path: Path) -> None:
    sweep = {
        "generation": [
            {"batching": "static"},
            {"batching": "sorted"},
            {"batching": "token_budget", "max_batch_tokens": 512},
        ],
        "model.attn_implementation": ["sdpa", "eager"],
        "model.torch_compile": [False, True, {"mode": "max-autotune"}],
        "generation.cache_implementation": ["dynamic", "static"],
    }
    plan = plan_campaign(campaign_file(tmp_path, sweep))
    configs = [c.config for c in plan.configurations]
    assert len(configs) == 3 * 2 * 3 * 2
    assert {(c.generation.batching, c.generation.max_batch_tokens) for c in configs} == {
        ("static", None),
        ("sorted", None),
        ("token_budget", 512),
    }
    assert {(c.model.torch_compile.enabled, c.model.torch_compile.mode) for c in configs} == {
        (False, "default"),
        (True, "default"),
        (True, "max-autotune"),
    }
    # A comparison names each configuration by the fields that differ, one path each.
    dumped = [c.model_dump(mode="json") for c in configs]
    assert set(varying_parameters(dumped)) == {
        "generation.batching",
        "generation.max_batch_tokens",
        "model.attn_implementation",
        "model.torch_compile.enabled",
        "model.torch_compile.mode",
        "generation.cache_implementation",
    }


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ({"generation": {"batching": "token_budget"}}, "token_budget needs max_batch_tokens"),
        (
            {"generation": {"max_batch_tokens": 64}},
            "max_batch_tokens applies to batching token_budget, not static",
        ),
        (
            {"model": {"name": "x", "torch_compile": {"backend": "eager", "mode": "max-autotune"}}},
            "mode max-autotune applies to the inductor backend, not eager",
        ),
        ({"model": {"name": "x", "attn_implementation": "flash"}}, "attn_implementation"),
        ({"generation": {"cache_implementation": "offloaded"}}, "cache_implementation"),
        (
            {"engine": "transformers-cb", "generation": {"batch_size": 1, "batching": "sorted"}},
            "generation.batching is a knob of engine transformers; engine transformers-cb",
        ),
    ],
)
def test_inconsistent_knobs_are_one_config_error(
    tmp_path: Path, section: dict, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        validate_config(tiny_config_dict(tmp_path, **section))
