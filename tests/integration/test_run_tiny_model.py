"""A real single-process experiment on the tiny Llama, files read back from disk."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from transformers import AutoTokenizer

from llenergymeasure.config.loader import validate_config
from llenergymeasure.models import resolve_model
from llenergymeasure.orchestration.launcher import ExperimentOutcome, run_experiment
from llenergymeasure.prompts import load_prompts

from llem_testing import tiny_config_dict


def run(tmp_path: Path, **sections) -> ExperimentOutcome:
    return run_experiment(validate_config(tiny_config_dict(tmp_path / "results", **sections)))


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ExperimentOutcome:
    return run(tmp_path_factory.mktemp("tiny"))


def process_json(outcome: ExperimentOutcome) -> dict:
    return orjson.loads((outcome.experiment_dir / "process_0.json").read_bytes())


def test_leaves_the_five_files(outcome: ExperimentOutcome) -> None:
    names = sorted(p.name for p in outcome.experiment_dir.iterdir())
    assert names == [
        ".completed_0",
        "experiment.json",
        "process_0.json",
        "process_0_timeseries.parquet",
    ]
    assert outcome.aggregated_path.is_file()
    manifest = orjson.loads((outcome.experiment_dir / "experiment.json").read_bytes())
    assert manifest["status"] == "completed" and manifest["expected_num_processes"] == 1


def test_marker_hash_matches_result(outcome: ExperimentOutcome) -> None:
    marker = orjson.loads((outcome.experiment_dir / ".completed_0").read_bytes())
    data = (outcome.experiment_dir / "process_0.json").read_bytes()
    assert marker["result_sha256"] == hashlib.sha256(data).hexdigest()


def test_input_tokens_are_what_the_tokenizer_says_without_padding(
    outcome: ExperimentOutcome,
) -> None:
    result = process_json(outcome)
    config = validate_config(tiny_config_dict(Path("unused")))
    prompts = {p.id: p.text for p in load_prompts(config.prompts)}
    tokenizer = AutoTokenizer.from_pretrained(resolve_model("builtin:tiny-llama").path)
    lengths = []
    for request in result["requests"]:
        expected = len(tokenizer(prompts[request["prompt_id"]])["input_ids"])
        assert request["input_tokens"] == expected, request["prompt_id"]
        lengths.append(expected)
    assert len(set(lengths)) > 1, "prompts of one length would not exercise padding"
    assert result["input_tokens"] == sum(lengths)
    assert [r["prompt_id"] for r in result["requests"]] == list(prompts)


def test_output_tokens_are_counted_per_request(outcome: ExperimentOutcome) -> None:
    result = process_json(outcome)
    outputs = [r["output_tokens"] for r in result["requests"]]
    assert result["output_tokens"] == sum(outputs) == outcome.aggregated.output_tokens
    for request in result["requests"]:
        assert 1 <= request["output_tokens"] <= 8
        assert request["stopped_by_eos"] == (request["output_tokens"] < 8)
    assert result["flops"]["tokens_processed"] == result["input_tokens"] + result["output_tokens"]
    # Prompts of several lengths are padded in a batch: the device computed more than needed.
    assert result["flops"]["flops_executed"] > result["flops"]["flops_useful"] > 0


def test_warmup_is_not_counted(outcome: ExperimentOutcome, tmp_path: Path) -> None:
    warm = process_json(outcome)
    assert warm["warmup"]["iterations"] >= 2
    cold = run(tmp_path, measurement={"warmup": {"enabled": False}})
    cold_result = orjson.loads((cold.experiment_dir / "process_0.json").read_bytes())
    assert cold_result["warmup"]["iterations"] == 0
    for key in ("num_requests", "input_tokens", "output_tokens"):
        assert cold_result[key] == warm[key]
    for key in ("total_flops", "flops_useful", "flops_executed"):
        assert cold_result["flops"][key] == warm["flops"][key], key


def test_latency_samples_per_request(outcome: ExperimentOutcome) -> None:
    result = process_json(outcome)
    samples = result["latency_samples"]
    n = result["num_requests"]
    assert len(samples["ttft_ms"]) == len(samples["e2e_ms"]) == n
    assert len(samples["itl_ms"]) == result["output_tokens"] - n
    assert all(t > 0 for t in samples["ttft_ms"])
    assert all(e >= t for e, t in zip(samples["e2e_ms"], samples["ttft_ms"], strict=True))
    assert result["latency"]["ttft_p95_ms"] >= result["latency"]["ttft_p50_ms"] > 0


def test_batch_return_is_at_least_every_requests_last_token(outcome: ExperimentOutcome) -> None:
    result = process_json(outcome)
    samples = result["latency_samples"]
    assert len(samples["batch_return_ms"]) == result["num_requests"]
    pairs = zip(samples["batch_return_ms"], samples["e2e_ms"], strict=True)
    assert all(r >= e for r, e in pairs)
    assert result["latency"]["batch_return_p50_ms"] >= result["latency"]["e2e_p50_ms"]
    assert result["thermal_throttle"]["thermal_duration_s"] is None


def test_the_thermal_floor_applied_is_recorded(outcome: ExperimentOutcome) -> None:
    warmup = process_json(outcome)["warmup"]
    assert warmup["thermal_floor_mode"] == "sleep" and warmup["thermal_floor_s"] == 0.0
    assert warmup["window_start_temperature_c"] is None


def test_stable_temperature_on_the_cpu_waits_nothing_and_warns(tmp_path: Path) -> None:
    measurement = tiny_config_dict(tmp_path)["measurement"]
    floor = {"mode": "stable_temperature", "stable_for_s": 5, "timeout_s": 30}
    result = process_json(run(tmp_path, measurement={**measurement, "thermal_floor": floor}))
    warmup = result["warmup"]
    assert warmup["thermal_floor_mode"] == "stable_temperature"
    assert warmup["thermal_floor_s"] == 0.0 and warmup["thermal_floor_stable"] is None
    assert "thermal_floor_unavailable" in {w["code"] for w in result["warnings"]}


def test_unmeasurable_fields_are_null_with_warnings(outcome: ExperimentOutcome) -> None:
    result = process_json(outcome)
    assert result["energy_method"] in ("estimate", "rapl")
    assert result["extended"]["peak_memory_mb"] is None
    assert result["extended"]["gpu_util_mean_pct"] is None
    assert result["thermal_throttle"]["detected"] is None
    assert result["extended"]["kv_cache_hit_rate"] is None
    codes = {w["code"] for w in result["warnings"]}
    assert "no_gpu" in codes
    if result["energy_method"] == "estimate":
        assert "energy_estimated" in codes
        (reading,) = result["energy_readings"]
        assert reading["assumptions"]
    assert result["energy_breakdown"]["raw_j"] > 0
    assert result["energy_breakdown"]["boundary"] == "cpu_dram"
    boundaries = {b["name"]: b for b in result["energy_boundaries"]}
    assert boundaries["gpu"]["energy_j"] is None and boundaries["gpu"]["note"]
    assert boundaries["cpu_dram"]["energy_j"] == result["energy_breakdown"]["raw_j"]
    assert result["sample_count"] is None  # power readings of GPUs: there are none


def test_timeseries_sidecar_is_relative_and_readable(outcome: ExperimentOutcome) -> None:
    result = process_json(outcome)
    assert result["timeseries_path"] == "process_0_timeseries.parquet"
    table = pq.read_table(outcome.experiment_dir / result["timeseries_path"])
    assert table.num_rows >= 1
    assert set(table.column("gpu_index").to_pylist()) == {-1}


def test_the_window_records_cpu_time_and_flags_a_busy_host(tmp_path: Path) -> None:
    burn = "while True: pass"
    burners = [subprocess.Popen([sys.executable, "-c", burn]) for _ in range(2)]
    try:
        busy = run(tmp_path)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    result = process_json(busy)
    extended = result["extended"]
    assert extended["process_cpu_s"] > 0
    assert extended["host_busy_cpu_s"] > extended["process_cpu_s"]
    assert "host_contention" in {w["code"] for w in result["warnings"]}
