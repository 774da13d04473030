"""The parallel and quantization sections: one count of processes, strict choices."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from llenergymeasure.config.models import ExperimentConfig


def config(**sections) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "x", "model": {"name": "builtin:tiny-llama"}, **sections}
    )


def test_processes_alone_are_data_parallel_copies() -> None:
    c = config(processes=3)
    assert (c.parallel.data, c.parallel.tensor, c.processes) == (3, 1, 3)


def test_a_parallel_section_gives_the_processes() -> None:
    c = config(parallel={"data": 2, "tensor": 2})
    assert c.processes == 4
    again = ExperimentConfig.model_validate(c.model_dump(mode="json"))
    assert again == c


def test_processes_with_a_tensor_size_give_the_data_groups() -> None:
    c = config(processes=4, parallel={"tensor": 2})
    assert c.parallel.data == 2


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"processes": 3, "parallel": {"tensor": 2}}, "cannot form tensor-parallel groups of 2"),
        ({"processes": 3, "parallel": {"data": 2}}, "processes: 3 disagrees with parallel"),
        ({"parallel": {"tensor": 2, "pipeline": 2}}, "tensor and pipeline cannot both exceed 1"),
        ({"parallel": {"tensor": 0}}, "greater than or equal to 1"),
        ({"parallel": {"tensors": 2}}, "Extra inputs are not permitted"),
        ({"model": {"name": "m", "quantization": {"method": "torchao"}}}, "needs bits: 4 or 8"),
        ({"model": {"name": "m", "quantization": {"bits": 8}}}, "bits applies to a quantization"),
        ({"model": {"name": "m", "quantization": {"method": "gptq", "bits": 4}}}, "method"),
        ({"model": {"name": "m", "quantization": {"method": "torchao", "bits": 3}}}, "bits"),
        (
            {
                "model": {
                    "name": "m",
                    "quantization": {"method": "torchao", "bits": 8, "compute_dtype": "float16"},
                }
            },
            "compute_dtype applies to bitsandbytes 4-bit only",
        ),
    ],
)
def test_inconsistent_sections_are_refused(sections: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(**sections)


def test_a_launch_of_another_world_size_keeps_the_tensor_size() -> None:
    c = config(parallel={"tensor": 2}).with_processes(6)
    assert (c.processes, c.parallel.data, c.parallel.tensor) == (6, 3, 2)
    with pytest.raises(ValueError, match="3 processes cannot form tensor-parallel groups of 2"):
        config(parallel={"tensor": 2}).with_processes(3)
