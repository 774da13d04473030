"""An export an analyst can use alone: the deployment in every row, times kept apart,
the scope of each energy figure, the CPU run's memory, units named alike.

A real two-process run (CPU estimate: a host-level figure shared by both processes).
"""

from __future__ import annotations

import csv
import shutil
import time
from datetime import datetime
from pathlib import Path

import orjson

from llem_testing import MultiProcessRun, run_llem

# Names fixed before `_s` was used everywhere (docs/formats.md); new columns say `_s`.
LOCKED_SEC_COLUMNS = {"thermal_throttle_duration_sec"}


def exported(tmp_path: Path, run: MultiProcessRun, *flags: str) -> list[dict[str, str]]:
    out = tmp_path / f"out{len(list(tmp_path.glob('out*.csv')))}.csv"
    target = run.results_dir if "--raw" not in flags else run.experiment_dir
    proc = run_llem("export", target, "--csv", "--out", out, *flags)
    assert proc.returncode == 0, proc.stderr
    with out.open(newline="") as f:
        return list(csv.DictReader(f))


def test_every_row_holds_the_resolved_config_and_its_hash(
    tmp_path: Path, two_process_run: MultiProcessRun
) -> None:
    manifest = orjson.loads((two_process_run.experiment_dir / "experiment.json").read_bytes())
    config = manifest["config"]
    for rows in (exported(tmp_path, two_process_run), exported(tmp_path, two_process_run, "--raw")):
        for row in rows:
            assert row["config_hash"] == manifest["config_hash"]
            assert row["config.generation.batch_size"] == str(config["generation"]["batch_size"])
            assert row["config.model.name"] == "builtin:tiny-llama"
            assert row["config.processes"] == "2"
            assert (
                row["config.measurement.energy.backend"]
                == config["measurement"]["energy"]["backend"]
            )
            assert row["config.generation.do_sample"] == "false"


def test_creation_and_aggregation_times_are_apart(
    tmp_path: Path, two_process_run: MultiProcessRun
) -> None:
    results = tmp_path / "results"
    source = two_process_run.experiment_dir
    shutil.copytree(source, results / "raw" / source.name)
    assert run_llem("aggregate", results / "raw" / source.name).returncode == 0
    created = orjson.loads((source / "experiment.json").read_bytes())["created_at"]

    def row() -> dict[str, str]:
        out = tmp_path / "times.csv"
        proc = run_llem("export", results, "--csv", "--out", out, "--force")
        assert proc.returncode == 0, proc.stderr
        with out.open(newline="") as f:
            (only,) = csv.DictReader(f)
        return only

    first = row()
    assert datetime.fromisoformat(first["created_at"]) == datetime.fromisoformat(created)
    assert datetime.fromisoformat(first["aggregated_at"]) > datetime.fromisoformat(created)
    time.sleep(0.01)
    assert run_llem("aggregate", results / "raw" / source.name).returncode == 0
    again = row()
    assert again["created_at"] == first["created_at"]
    assert again["aggregated_at"] > first["aggregated_at"]


def test_energy_scope_memory_and_units(tmp_path: Path, two_process_run: MultiProcessRun) -> None:
    per_process = exported(tmp_path, two_process_run, "--raw")
    assert [r["energy_method"] for r in per_process] == ["estimate", "estimate"]
    assert [r["energy_scope"] for r in per_process] == ["machine", "machine"]
    assert all(float(r["process_rss_peak_mb"]) > 0 for r in per_process)
    (aggregated,) = exported(tmp_path, two_process_run, "--per-process")
    assert aggregated["energy_scope"] == "machine"
    assert aggregated["process_0_energy_scope"] == aggregated["process_1_energy_scope"] == "machine"
    assert float(aggregated["process_rss_peak_mb"]) >= max(
        float(r["process_rss_peak_mb"]) for r in per_process
    )
    for header in (per_process[0], aggregated):
        assert {c for c in header if c.endswith("_sec")} <= LOCKED_SEC_COLUMNS
