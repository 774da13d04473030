"""Where each process of a parallel layout stands, and how its share of the model is loaded."""

from __future__ import annotations

import torch

from llenergymeasure.config.deployment import ParallelConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.loading import load_plan
from llenergymeasure.core.parallel import process_layout


def test_tensor_ranks_are_consecutive_processes_of_one_group() -> None:
    parallel = ParallelConfig(data=2, tensor=2)
    places = [process_layout(parallel, i, i, "cpu").placement for i in range(4)]
    assert [(p.data_group, p.tensor_rank) for p in places] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [p.counts_requests for p in places] == [True, False, True, False]
    assert all(p.data_groups == 2 and p.tensor_size == 2 for p in places)


def test_a_pipeline_process_holds_its_own_run_of_gpus() -> None:
    parallel = ParallelConfig(data=2, pipeline=3)
    layouts = [process_layout(parallel, i, i, f"cuda:{i}") for i in (0, 1)]
    assert [layout.cuda_ordinals for layout in layouts] == [[0, 1, 2], [3, 4, 5]]
    assert [layout.device for layout in layouts] == ["cuda:0", "cuda:3"]


def test_one_gpu_per_process_without_a_pipeline() -> None:
    layout = process_layout(ParallelConfig(data=2), 1, 1, "cuda:1")
    assert (layout.device, layout.cuda_ordinals) == ("cuda:1", [1])
    assert process_layout(ParallelConfig(), 0, 0, "cpu").cuda_ordinals == []


def config(**sections) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {"name": "x", "model": {"name": "builtin:tiny-llama"}, **sections}
    )


def test_a_tensor_group_loads_through_transformers_tensor_plan() -> None:
    c = config(parallel={"tensor": 2})
    plan = load_plan(c, process_layout(c.parallel, 1, 1, "cpu"), torch.float32)
    assert plan.kwargs["distributed_config"].tp_size == 2
    assert "device_map" not in plan.kwargs and not plan.move_to_device


def test_quantized_weights_are_made_on_their_device_and_plain_ones_moved() -> None:
    quantized = config(model={"name": "m", "quantization": {"method": "torchao", "bits": 8}})
    plan = load_plan(quantized, process_layout(quantized.parallel, 0, 0, "cpu"), torch.float32)
    assert plan.kwargs["device_map"] == {"": "cpu"} and not plan.move_to_device
    assert type(plan.kwargs["quantization_config"]).__name__ == "TorchAoConfig"
    plain = config()
    plan = load_plan(plain, process_layout(plain.parallel, 0, 0, "cpu"), torch.float32)
    assert plan.move_to_device and "quantization_config" not in plan.kwargs
