"""A 2-process vLLM run (data parallel through accelerate launch) adds up like any other.

Each launcher process starts its own vLLM engine (engine core and worker processes) over
its shard of the prompts, on the CPU here; the aggregate is read back from the files.
About two minutes on a 2-core VM, most of it the two vLLM loads. `make test` runs it in
.venv-vllm (marker `vllm`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from llem_testing import run_llem, tiny_config_dict, write_yaml

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

NUM_PROMPTS = 4
MAX_NEW = 8


def read_json(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def test_a_two_process_vllm_run_adds_up_like_any_other(tmp_path: Path) -> None:
    config = tiny_config_dict(
        tmp_path / "results",
        engine="vllm",
        model={"name": "builtin:smollm2-135m", "dtype": "float32"},
        prompts={"num_prompts": NUM_PROMPTS},
        generation={"max_new_tokens": MAX_NEW},
        vllm={
            "kv_cache_memory_mb": 128,
            "max_model_len": 512,
            "max_num_seqs": NUM_PROMPTS,
            "enforce_eager": True,
        },
        measurement={
            "warmup": {"min_prompts": 1, "max_prompts": 2, "window_size": 2, "max_new_tokens": 4}
        },
    )
    del config["generation"]["batch_size"]  # an option of engine transformers only
    config_path = write_yaml(tmp_path / "vllm2.yaml", config)
    proc = run_llem("run", config_path, "--processes", "2", cwd=tmp_path, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()

    parts = [read_json(experiment_dir / f"process_{i}.json") for i in (0, 1)]
    for i in (0, 1):
        marker = read_json(experiment_dir / f".completed_{i}")
        digest = hashlib.sha256((experiment_dir / f"process_{i}.json").read_bytes()).hexdigest()
        assert marker["process_index"] == i and marker["result_sha256"] == digest
    manifest = read_json(experiment_dir / "experiment.json")
    assert manifest["expected_num_processes"] == 2 and manifest["status"] == "completed"
    assert "--num_processes 2" in " ".join(manifest["launch_command"])
    assert [p["engine"] for p in parts] == ["vllm", "vllm"]
    assert parts[0]["pid"] != parts[1]["pid"]
    shards = [{r["prompt_id"] for r in p["requests"]} for p in parts]
    assert all(shards) and not shards[0] & shards[1]
    assert len(shards[0] | shards[1]) == NUM_PROMPTS

    aggregated = read_json(tmp_path / "results" / "aggregated" / f"{experiment_dir.name}.json")
    for key in ("num_requests", "input_tokens", "output_tokens"):
        assert aggregated[key] == sum(p[key] for p in parts), key
    assert aggregated["output_tokens"] == sum(
        r["output_tokens"] for p in parts for r in p["requests"]
    )
    for key in ("flops_useful", "flops_executed"):
        assert aggregated[key] == sum(p["flops"][key] for p in parts), key
    info = aggregated["aggregation"]
    assert info["num_processes"] == 2 and not info["partial"]
    assert info["temporal_overlap_verified"] and info["gpu_attribution_verified"]

    # Per component: device-level readings summed over the processes, a machine-level one
    # (the CPU here) counted once per host, from the process with the longest window.
    by_component = {c["component"]: c for c in aggregated["energy_components"]}
    kinds = {c["component"] for p in parts for c in p["energy_components"]}
    assert kinds and set(by_component) == kinds
    for kind in kinds:
        readings = [c for p in parts for c in p["energy_components"] if c["component"] == kind]
        devices = sum(c["energy_j"] for c in readings if c["scope"] != "machine")
        machine = [c for c in readings if c["scope"] == "machine"]
        once = max(machine, key=lambda c: c["window_s"])["energy_j"] if machine else 0.0
        assert by_component[kind]["energy_j"] == pytest.approx(devices + once), kind
    assert aggregated["energy_per_output_token_j"] == pytest.approx(
        aggregated["energy_breakdown"]["raw_j"] / aggregated["output_tokens"]
    )
