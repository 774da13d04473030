"""`llem export` on a real tiny experiment, files read back with csv, pandas, duckdb, pyarrow."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.orchestration.launcher import ExperimentOutcome, run_experiment
from llenergymeasure.results.timeseries import load_timeseries

from llem_testing import run_llem, tiny_config_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SIDECAR_TYPES = [
    ("timestamp_s", "DOUBLE"),
    ("gpu_index", "INTEGER"),
    ("power_w", "FLOAT"),
    ("temperature_c", "FLOAT"),
    ("memory_used_mb", "FLOAT"),
    ("memory_total_mb", "FLOAT"),
    ("sm_utilisation_pct", "FLOAT"),
    ("throttle_reasons", "BIGINT"),
]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ExperimentOutcome:
    root = tmp_path_factory.mktemp("export") / "results"
    return run_experiment(validate_config(tiny_config_dict(root)))


def results_root(outcome: ExperimentOutcome) -> Path:
    return outcome.experiment_dir.parent.parent


def llem_ok(*args: str | Path) -> str:
    done = run_llem("export", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_experiment_csv_matches_the_aggregate(outcome: ExperimentOutcome) -> None:
    root = results_root(outcome)
    stdout = llem_ok(outcome.experiment_id, "--csv", "--per-process", "--results-dir", root)
    path = root / "exports" / f"{outcome.experiment_id}.csv"
    assert f"wrote {path}" in stdout
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1
    agg = outcome.aggregated
    frame = pd.read_csv(path)
    assert frame.loc[0, "energy_raw_j"] == agg.energy_breakdown.raw_j
    assert frame.loc[0, "energy_per_output_token_j"] == agg.energy_per_output_token_j
    assert frame.loc[0, "output_tokens"] == frame.loc[0, "process_0_tokens"] == agg.output_tokens
    assert frame.loc[0, "latency_e2e_p95_ms"] == agg.latency.e2e_p95_ms
    assert rows[0]["gpu_util_mean_pct"] == "" and rows[0]["process_0_gpu_uuid"] == ""
    assert rows[0]["thermal_throttle_detected"] == ""


def test_csv_points_at_a_readable_one_hz_sidecar(outcome: ExperimentOutcome) -> None:
    root = results_root(outcome)
    out = root.parent / "picked.csv"
    llem_ok(outcome.experiment_dir, "--csv", "--out", out)
    sidecar = Path(pd.read_csv(out).loc[0, "timeseries_path"])
    assert sidecar == (outcome.experiment_dir / "process_0_timeseries.parquet").absolute()
    described = duckdb.sql(f"describe select * from '{sidecar}'").fetchall()
    assert [(name, kind) for name, kind, *_ in described] == SIDECAR_TYPES
    rows = duckdb.sql(
        f"select timestamp_s, gpu_index from '{sidecar}' order by timestamp_s"
    ).fetchall()
    assert rows and all(t == int(t) for t, _ in rows), "1 Hz buckets start on whole seconds"
    assert len({t for t, _ in rows}) == len(rows) and {g for _, g in rows} == {-1}


def test_raw_csv_has_one_row_per_process(outcome: ExperimentOutcome, tmp_path: Path) -> None:
    out = tmp_path / "processes.csv"
    llem_ok(outcome.experiment_dir, "--csv", "--raw", "--out", out)
    frame = pd.read_csv(out)
    assert list(frame["process_index"]) == [0]
    assert frame.loc[0, "energy_raw_j"] == outcome.aggregated.energy_breakdown.raw_j
    assert frame.loc[0, "device"] == "cpu" and pd.isna(frame.loc[0, "gpu_uuid"])


def test_timeseries_json_from_the_sidecar(outcome: ExperimentOutcome, tmp_path: Path) -> None:
    llem_ok(outcome.experiment_dir, "--timeseries-json", "--out", tmp_path)
    data = load_timeseries(tmp_path / "process_0_timeseries.json")
    table = pq.read_table(outcome.experiment_dir / "process_0_timeseries.parquet")
    memory = table.column("memory_used_mb").to_pylist()
    assert data["experiment_id"] == outcome.experiment_id
    assert data["sample_count"] == table.num_rows and data["sample_interval_ms"] == 1000
    assert data["summary"]["memory_max_mb"] == pytest.approx(max(memory), abs=0.05)
    assert data["summary"]["power_mean_w"] is None
    bundle = load_timeseries(tmp_path / "timeseries.json")
    assert bundle["process_count"] == 1 and bundle["processes"][0] == data


def test_results_folder_csv_includes_an_old_schema_result(
    outcome: ExperimentOutcome, tmp_path: Path
) -> None:
    root = tmp_path / "results"
    shutil.copytree(results_root(outcome), root)
    old = FIXTURES / "aggregated_schema_v1_minimal.json"
    shutil.copy(old, root / "aggregated" / old.name.replace("aggregated_schema_v1_minimal", "e"))
    stdout = llem_ok(root, "--csv")
    assert "2 experiments" in stdout
    frame = pd.read_csv(root / "exports" / "experiments.csv")
    assert list(frame["experiment_id"]) == ["early_20250301T101500_0a1b", outcome.experiment_id]
    early = frame.iloc[0]
    assert early["energy_raw_j"] == 412.75
    assert early[["latency_e2e_mean_ms", "env_summary", "timeseries_path"]].isna().all()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope_20260101T000000_0000", "--csv"), "no experiment nope_20260101T000000_0000"),
        (("missing/raw/dir", "--csv"), "missing/raw/dir: no such experiment directory"),
        (("{id}",), "say what to export"),
        (("{root}", "--timeseries-json"), "need one experiment"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(
    outcome: ExperimentOutcome, args: tuple[str, ...], message: str
) -> None:
    root = results_root(outcome)
    filled = [a.format(id=outcome.experiment_id, root=root) for a in args]
    done = run_llem("export", *filled, "--results-dir", root)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
