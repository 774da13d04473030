"""Aggregation of tensor-parallel groups: tokens once per group, every rank's GPU energy."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_aggregation import aggregate, result, write_experiment

from llenergymeasure.domain.deployment import ParallelPlacement, QuantizationRecord
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.errors import UnverifiedExperiment


def placement(index: int, tensor: int, groups: int) -> ParallelPlacement:
    return ParallelPlacement(
        data_groups=groups,
        data_group=index // tensor,
        tensor_size=tensor,
        tensor_rank=index % tensor,
        pipeline_size=1,
    )


def requests(group: int, output_tokens: int = 10) -> list[RequestRecord]:
    return [
        RequestRecord(
            prompt_id=f"g{group}-p{k}",
            input_tokens=40,
            output_tokens=output_tokens,
            stopped_by_eos=False,
        )
        for k in range(5)
    ]


def rank(index: int, tensor: int = 2, groups: int = 2, **fields):
    group = index // tensor
    return result(
        index,
        device=f"GPU-{index}",
        method="nvml_counter",
        energy_j=100.0 + index,
        parallel=placement(index, tensor, groups),
        requests=fields.pop("requests", requests(group)),
        model_memory_mb=fields.pop("model_memory_mb", 30.0),
        **fields,
    )


def test_a_groups_tokens_count_once_and_every_gpu_counts(tmp_path: Path) -> None:
    write_experiment(tmp_path, [rank(i) for i in range(4)], expected=4)
    agg = aggregate(tmp_path)
    # Two groups of two ranks: the tokens of ranks 0 and 2, the energy of all four GPUs.
    assert agg.output_tokens == 100 and agg.num_requests == 10 and agg.input_tokens == 400
    assert agg.energy_breakdown.raw_j == pytest.approx(100 + 101 + 102 + 103)
    assert agg.energy_per_output_token_j == pytest.approx(406 / 100)
    assert [p.counts_requests for p in agg.processes] == [True, False, True, False]
    assert [p.data_group for p in agg.processes] == [0, 0, 1, 1]
    assert agg.aggregation.parallel_groups_verified and agg.aggregation.gpu_attribution_verified
    assert agg.parallel.tensor_size == 2 and agg.parallel.data_groups == 2
    assert agg.model_memory_mb == pytest.approx(60.0)  # the two shards of one copy
    # Latency is pooled over the counted ranks only: TTFT 10 ms (rank 0) and 30 ms (rank 2).
    assert agg.latency.ttft_mean_ms == pytest.approx(20.0)


def test_ranks_of_a_group_that_disagree_on_tokens_are_refused(tmp_path: Path) -> None:
    results = [rank(0, groups=1), rank(1, groups=1, requests=requests(0, output_tokens=9))]
    write_experiment(tmp_path, results)
    with pytest.raises(UnverifiedExperiment, match="tensor-parallel group 0: process 1 ran other"):
        aggregate(tmp_path)
    agg = aggregate(tmp_path, allow_unverified=True)
    assert agg.aggregation.parallel_groups_verified is False


def test_a_gpu_claimed_by_two_ranks_of_a_group_is_still_refused(tmp_path: Path) -> None:
    results = [rank(0, groups=1), rank(1, groups=1)]
    results[1] = results[1].model_copy(update={"energy_readings": results[0].energy_readings})
    write_experiment(tmp_path, results)
    with pytest.raises(UnverifiedExperiment, match="device GPU-0 on h0 is claimed by processes"):
        aggregate(tmp_path)


def test_without_rank_0_a_partial_group_counts_its_lowest_rank(tmp_path: Path) -> None:
    write_experiment(tmp_path, [rank(1, groups=1)])
    agg = aggregate(tmp_path, allow_partial=True)
    assert agg.output_tokens == 50 and agg.processes[0].counts_requests


def test_results_without_a_placement_each_count(tmp_path: Path) -> None:
    write_experiment(tmp_path, [result(0), result(1)])
    agg = aggregate(tmp_path)
    assert agg.output_tokens == 100 and agg.parallel is None
    assert all(p.counts_requests for p in agg.processes)


def test_a_quantized_groups_memory_before_and_after_add_up_over_its_ranks(
    tmp_path: Path,
) -> None:
    def quantized(index: int):
        record = QuantizationRecord(
            method="torchao",
            bits=8,
            compute_dtype="float32",
            quantized_weights=14,
            unquantized_memory_mb=75.0,
        )
        return rank(index, model_memory_mb=30.0, quantization=record)

    write_experiment(tmp_path, [quantized(i) for i in range(4)], expected=4)
    agg = aggregate(tmp_path)
    # One copy of the model: the two shards of group 0, before and after quantization.
    assert agg.model_memory_mb == pytest.approx(60.0)
    assert agg.quantization.unquantized_memory_mb == pytest.approx(150.0)
    assert agg.quantization.quantized_weights == 14  # the same tensors, sharded
