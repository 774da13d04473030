"""Deployment knobs this model or machine cannot honour: one line, exit code 2, nothing created.

A tensor size that does not divide the model's heads (read from its config.json), pipeline
placement or a CUDA-only quantization without CUDA: each is refused by `llem run` before
the experiment directory exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from faults import assert_one_error_line
from llem_testing import run_llem, tiny_config_dict, write_yaml

INT8 = {"method": "torchao", "bits": 8}


def test_a_tensor_size_that_does_not_divide_the_heads_is_refused_before_anything(
    tmp_path: Path,
) -> None:
    config = tiny_config_dict(tmp_path / "results", parallel={"tensor": 3})
    proc = run_llem("run", write_yaml(tmp_path / "tp3.yaml", config), cwd=tmp_path)
    assert_one_error_line(
        proc, "parallel.tensor: 3 does not divide the 4 num_attention_heads of builtin:tiny-llama"
    )
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_smollm2_nine_heads_do_not_split_over_two_ranks(tmp_path: Path) -> None:
    config = tiny_config_dict(
        tmp_path / "results", model={"name": "builtin:smollm2-135m"}, parallel={"tensor": 2}
    )
    proc = run_llem("run", write_yaml(tmp_path / "smol.yaml", config), cwd=tmp_path)
    assert_one_error_line(
        proc, "parallel.tensor: 2 does not divide the 9 num_attention_heads of builtin:smollm2"
    )
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_pipeline_placement_needs_cuda(tmp_path: Path) -> None:
    config = tiny_config_dict(tmp_path / "results", parallel={"pipeline": 2})
    proc = run_llem("run", write_yaml(tmp_path / "pp.yaml", config), cwd=tmp_path)
    assert_one_error_line(proc, "parallel.pipeline: 2 places the model's layers over several GPUs")
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
@pytest.mark.parametrize(
    ("quantization", "expected"),
    [
        (
            {"method": "bitsandbytes", "bits": 4},
            "model.quantization.method: bitsandbytes needs CUDA and none is visible",
        ),
        ({"method": "torchao", "bits": 4}, "with bits: 4 needs CUDA (torchao's int4 kernels)"),
    ],
)
def test_a_cuda_only_method_is_refused_on_the_cpu(
    tmp_path: Path, quantization: dict, expected: str
) -> None:
    config = tiny_config_dict(
        tmp_path / "results", model={"name": "builtin:tiny-llama", "quantization": quantization}
    )
    proc = run_llem("run", write_yaml(tmp_path / "q.yaml", config), cwd=tmp_path)
    assert_one_error_line(proc, expected)
    assert not (tmp_path / "results").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_a_campaign_sweeping_a_method_this_machine_lacks_is_refused_up_front(
    tmp_path: Path,
) -> None:
    write_yaml(tmp_path / "base.yaml", tiny_config_dict(tmp_path / "results"))
    campaign = {
        "campaign_name": "quant",
        "base": "base.yaml",
        "sweep": {
            "model.quantization": [
                {"method": "none"},
                INT8,
                {"method": "bitsandbytes", "bits": 4},
            ]
        },
    }
    proc = run_llem("campaign", write_yaml(tmp_path / "c.yaml", campaign), cwd=tmp_path)
    line = assert_one_error_line(proc, "1 of 3 configurations cannot run")
    assert "bitsandbytes needs CUDA" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.yaml", "c.yaml"]
