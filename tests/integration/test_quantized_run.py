"""Quantization on the CPU: torchao's int8 weight-only through a real `llem run`.

The result records the method, the bits, the compute dtype and what the weights take as
stored, which must be less than the same model unquantized.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.transformers import TransformersEngine

from llem_testing import one_torch_thread, run_llem, tiny_config_dict, write_yaml

INT8 = {"method": "torchao", "bits": 8}


def read_json(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def run_tiny(root: Path, model: dict) -> dict:
    root.mkdir()
    config = tiny_config_dict(root / "results", model=model)
    proc = run_llem("run", write_yaml(root / "q.yaml", config), cwd=root)
    assert proc.returncode == 0, proc.stderr
    (experiment_dir,) = (root / "results" / "raw").iterdir()
    return read_json(experiment_dir / "process_0.json")


def test_an_int8_run_records_its_method_and_a_smaller_footprint(tmp_path: Path) -> None:
    plain = run_tiny(tmp_path / "plain", {"name": "builtin:tiny-llama"})
    quantized = run_tiny(tmp_path / "int8", {"name": "builtin:tiny-llama", "quantization": INT8})
    assert plain["quantization"] is None
    record = quantized["quantization"]
    assert record["method"] == "torchao" and record["bits"] == 8
    assert record["compute_dtype"] == "float32"
    # tiny-llama has 2 layers of 7 linear weights each; all of them became int8.
    assert record["quantized_weights"] == 14
    assert record["unquantized_memory_mb"] == pytest.approx(plain["model_memory_mb"], rel=0.01)
    assert quantized["model_memory_mb"] < 0.8 * plain["model_memory_mb"]
    assert quantized["output_tokens"] > 0 and quantized["num_requests"] == 12
    assert not [w for w in quantized["warnings"] if w["code"] == "quantization_not_applied"]
    # The export has the method and the footprint beside the other figures.
    root = tmp_path / "int8"
    proc = run_llem("export", "results", "--csv", "--out", root / "int8.csv", cwd=root)
    assert proc.returncode == 0, proc.stderr
    (row,) = csv.DictReader((root / "int8.csv").open())
    assert (row["quantization_method"], row["quantization_bits"]) == ("torchao", "8")
    assert float(row["model_memory_mb"]) == pytest.approx(quantized["model_memory_mb"])
    assert float(row["quantization_unquantized_memory_mb"]) > float(row["model_memory_mb"])


@pytest.mark.slow
def test_smollm2_int8_stores_less_than_smollm2_float32() -> None:
    base = {"name": "builtin:smollm2-135m"}
    plain_config = ExperimentConfig.model_validate({"name": "smol", "model": base})
    int8_config = ExperimentConfig.model_validate(
        {"name": "smol", "model": {**base, "quantization": INT8}}
    )
    with one_torch_thread():
        plain = TransformersEngine(plain_config, "cpu").load()
        quantized = TransformersEngine(int8_config, "cpu").load()
    assert plain.memory_mb is not None and quantized.memory_mb is not None
    assert quantized.quantization is not None and quantized.quantization.method == "torchao"
    assert quantized.quantization.quantized_weights == 30 * 7
    assert quantized.memory_mb < 0.6 * plain.memory_mb
