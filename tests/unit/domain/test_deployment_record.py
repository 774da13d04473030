"""Padding figures across processes and the fallbacks a deployment record names."""

from __future__ import annotations

import pytest

from llenergymeasure.domain.deployment import DeploymentRecord, PaddingStats


def record(**changes) -> DeploymentRecord:
    fields = {
        "batching": "static",
        "batch_count": 2,
        "attn_implementation_requested": "sdpa",
        "attn_implementation_effective": "sdpa",
        "dtype_requested": "bfloat16",
        "dtype_effective": "bfloat16",
        "cache_implementation_requested": "static",
        "cache_implementation_effective": "StaticCache",
    }
    return DeploymentRecord(**{**fields, **changes})


def test_padding_shares_come_from_summed_counts_not_averaged_shares() -> None:
    a = PaddingStats(
        prompt_real_tokens=100, prompt_positions=300, output_real_tokens=10, output_positions=10
    )
    b = PaddingStats(
        prompt_real_tokens=900, prompt_positions=900, output_real_tokens=30, output_positions=40
    )
    both = PaddingStats.combine([a, b])
    assert both is not None
    assert both.padding_share == pytest.approx(200 / 1000)  # the mean of shares would be 1.0
    assert both.output_padding_share == pytest.approx(10 / 40)
    assert both.model_dump()["padding_share"] == pytest.approx(0.2)
    assert PaddingStats.combine([a, None]) is None


def test_a_record_as_requested_names_no_fallback() -> None:
    assert record().fallbacks() == []
    assert record(attn_implementation_requested="auto").fallbacks() == []


def test_each_knob_not_honoured_is_named() -> None:
    found = record(
        attn_implementation_effective="eager",
        dtype_effective="float32",
        cache_implementation_effective="DynamicCache",
        torch_compile_requested="inductor:default",
        torch_compile_effective=False,
    ).fallbacks()
    assert found == [
        "model.attn_implementation: requested sdpa, ran eager",
        "model.dtype: requested bfloat16, ran float32",
        "generation.cache_implementation: requested static, ran dynamic",
        "model.torch_compile: requested inductor:default, no graph was compiled",
    ]


def test_graphs_compiled_inside_the_window_are_named() -> None:
    (found,) = record(
        torch_compile_requested="inductor:default",
        torch_compile_effective=True,
        window_compiled_graphs=2,
    ).fallbacks()
    assert "2 graph(s) compiled inside the energy window" in found
