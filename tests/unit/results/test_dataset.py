"""The parquet dataset on stored files: an old aggregate, configs that differ in shape."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import orjson
import pyarrow.parquet as pq

from llenergymeasure.domain.experiment import AggregatedResult, ExperimentManifest
from llenergymeasure.results.dataset import build_dataset, write_dataset
from llenergymeasure.results.exporters import aggregated_row
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model, write_model

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
OLD = FIXTURES / "aggregated_schema_v1_minimal.json"


def store_aggregate(root: Path, experiment_id: str) -> None:
    document = orjson.loads(OLD.read_bytes()) | {"experiment_id": experiment_id}
    (root / "aggregated").mkdir(parents=True, exist_ok=True)
    (root / "aggregated" / f"{experiment_id}.json").write_bytes(orjson.dumps(document))


def store_manifest(root: Path, experiment_id: str, config: dict) -> None:
    manifest = ExperimentManifest(
        experiment_id=experiment_id,
        config=config,
        config_hash="0" * 64,
        expected_num_processes=2,
        created_at=datetime(2025, 3, 1, 10, 15, tzinfo=timezone.utc),
        status="completed",
    )
    experiment_dir = ResultsLayout(root).experiment_dir(experiment_id)
    experiment_dir.mkdir(parents=True)
    write_model(manifest_path(experiment_dir), manifest)


def test_an_old_aggregate_without_raw_files_exports_with_one_note(tmp_path: Path) -> None:
    store_aggregate(tmp_path, "early_20250301T101500_0a1b")
    dataset = build_dataset(ResultsLayout(tmp_path))
    assert dataset.notes == [
        f"{tmp_path}/raw/early_20250301T101500_0a1b: not found "
        "(config, requests and time series left empty)"
    ]
    paths = write_dataset(dataset, tmp_path / "out")
    experiments = pq.read_table(paths[0]).to_pylist()
    assert len(experiments) == 1 and experiments[0]["config_hash"] is None
    assert experiments[0]["wall_window_s"] == 12.5
    types = pq.read_schema(paths[0])
    assert str(types.field("energy_gpu_j").type) == "double"
    assert str(types.field("env_gpu_name").type) == "string"
    assert str(types.field("thermal_throttle_detected").type) == "bool"
    assert pq.read_table(paths[1]).num_rows == 0
    assert pq.read_table(paths[2]).column_names == ["experiment_id", "process_index"]


def test_columns_are_the_csv_columns_then_manifest_then_config(tmp_path: Path) -> None:
    store_aggregate(tmp_path, "a")
    store_manifest(tmp_path, "a", {"name": "a", "sweep": [1, 2], "seed": 1})
    dataset = build_dataset(ResultsLayout(tmp_path))
    csv_columns = list(aggregated_row(dataset_result(tmp_path, "a"), results_root=tmp_path))
    names = dataset.experiments.column_names
    assert names == [
        *(c for c in csv_columns if not c.startswith("config.")),
        "config.name",
        "config.seed",
        "config.sweep",
    ]
    assert "config_hash" in names


def dataset_result(root: Path, experiment_id: str) -> AggregatedResult:
    return read_model(root / "aggregated" / f"{experiment_id}.json", AggregatedResult)


def test_lists_and_fields_of_mixed_types_are_json_text(tmp_path: Path) -> None:
    for experiment_id, seed, sweep in (("a", 1, [1]), ("b", "x", 2)):
        store_aggregate(tmp_path, experiment_id)
        store_manifest(
            tmp_path, experiment_id, {"model": {"name": "m"}, "seed": seed, "sweep": sweep}
        )
    experiments = build_dataset(ResultsLayout(tmp_path)).experiments
    rows = {r["experiment_id"]: r for r in experiments.to_pylist()}
    assert rows["a"]["config.seed"] == "1" and rows["b"]["config.seed"] == '"x"'
    assert rows["a"]["config.sweep"] == "[1]" and rows["b"]["config.sweep"] == "2"
    assert rows["a"]["config.model.name"] == "m"
