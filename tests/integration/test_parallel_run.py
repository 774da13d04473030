"""Tensor parallelism through the real launcher: two gloo ranks split tiny-llama's layers.

The ranks run the same prompts together (transformers' `tp_plan`), so the aggregate
counts their requests and tokens once while each rank's own energy reading stays its own.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.transformers import TransformersEngine

from llem_testing import one_torch_thread, run_llem, tiny_config_dict, write_yaml


def read_json(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


@pytest.fixture(scope="module")
def tensor_parallel_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tensor-parallel")
    config = tiny_config_dict(root / "results", parallel={"tensor": 2})
    proc = run_llem("run", write_yaml(root / "tp.yaml", config), cwd=root)
    assert proc.returncode == 0, proc.stderr
    (experiment_dir,) = (root / "results" / "raw").iterdir()
    return experiment_dir, root / "results" / "aggregated" / f"{experiment_dir.name}.json"


def test_both_ranks_ran_the_same_prompts_in_one_group(
    tensor_parallel_run: tuple[Path, Path],
) -> None:
    experiment_dir, _ = tensor_parallel_run
    manifest = read_json(experiment_dir / "experiment.json")
    assert manifest["expected_num_processes"] == 2
    assert manifest["config"]["parallel"] == {"data": 1, "tensor": 2, "pipeline": 1}
    ranks = [read_json(experiment_dir / f"process_{i}.json") for i in (0, 1)]
    assert [r["parallel"]["tensor_rank"] for r in ranks] == [0, 1]
    assert {r["parallel"]["data_group"] for r in ranks} == {0}
    assert ranks[0]["pid"] != ranks[1]["pid"]
    # Tensor parallelism computes one model: the same prompts and the same tokens on both.
    assert ranks[0]["requests"] == ranks[1]["requests"]
    assert len(ranks[0]["requests"]) == 12
    # Each warmup `generate` is one collective: the ranks judged the same (slowest-rank)
    # latencies and stopped after the same iteration.
    warmups = [r["warmup"] for r in ranks]
    assert warmups[0]["latencies_ms"] == warmups[1]["latencies_ms"]
    assert warmups[0]["iterations"] == warmups[1]["iterations"] >= 2


def test_tokens_are_counted_once_per_group_and_energy_attribution_verified(
    tensor_parallel_run: tuple[Path, Path],
) -> None:
    experiment_dir, aggregated_path = tensor_parallel_run
    ranks = [read_json(experiment_dir / f"process_{i}.json") for i in (0, 1)]
    aggregated = read_json(aggregated_path)
    for key in ("num_requests", "input_tokens", "output_tokens"):
        assert aggregated[key] == ranks[0][key], key
        assert aggregated[key] < ranks[0][key] + ranks[1][key], key
    assert aggregated["num_requests"] == 12
    assert aggregated["flops_useful"] == ranks[0]["flops"]["flops_useful"]
    info = aggregated["aggregation"]
    assert info["num_processes"] == 2 and not info["partial"]
    assert info["gpu_attribution_verified"] and info["temporal_overlap_verified"]
    assert info["parallel_groups_verified"] is True
    assert [p["counts_requests"] for p in aggregated["processes"]] == [True, False]
    assert aggregated["parallel"] == {"data_groups": 1, "tensor_size": 2, "pipeline_size": 1}
    # One host: its machine-level CPU energy is counted once, not once per rank.
    longest = max(ranks, key=lambda r: r["energy_window_s"])
    assert aggregated["energy_breakdown"]["raw_j"] == longest["energy_breakdown"]["raw_j"]
    assert aggregated["energy_per_output_token_j"] == pytest.approx(
        aggregated["energy_breakdown"]["raw_j"] / ranks[0]["output_tokens"]
    )


def test_each_rank_stores_less_than_the_whole_model(
    tensor_parallel_run: tuple[Path, Path],
) -> None:
    experiment_dir, aggregated_path = tensor_parallel_run
    config = ExperimentConfig.model_validate(tiny_config_dict(experiment_dir))
    with one_torch_thread():
        whole_mb = TransformersEngine(config, "cpu").load().memory_mb
    assert whole_mb is not None
    shares = [read_json(experiment_dir / f"process_{i}.json")["model_memory_mb"] for i in (0, 1)]
    assert all(0 < share < whole_mb for share in shares)
    assert read_json(aggregated_path)["model_memory_mb"] == pytest.approx(sum(shares))
