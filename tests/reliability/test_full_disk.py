"""A full disk during a write: one clear line, exit code 2, the previous state intact.

`fault_driver.py` makes one write fail halfway with ENOSPC ("No space left on device"),
as the operating system reports it to the writing call.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import orjson
import pytest

from faults import (
    TEMPORARY,
    assert_one_error_line,
    check_aggregated,
    check_invariant,
    quick_config_dict,
    run_driver,
)
from llem_testing import MultiProcessRun, run_llem, write_yaml

# The failing write, what is left beside the manifest, and the status it ends with.
CASES = {
    "process_0_timeseries.parquet:partial": ([], "failed"),
    "process_0.json:partial": (["process_0_timeseries.parquet"], "failed"),
    ".completed_0:partial": (["process_0.json", "process_0_timeseries.parquet"], "failed"),
    "experiment.json:partial:2": (
        [".completed_0", "process_0.json", "process_0_timeseries.parquet"],
        "running",
    ),
}


@pytest.mark.parametrize("point", list(CASES))
def test_full_disk_during_a_run_is_one_line_and_loses_nothing(tmp_path: Path, point: str) -> None:
    kept, status = CASES[point]
    config = write_yaml(tmp_path / "quick.yaml", quick_config_dict(tmp_path / "results"))
    proc = run_driver(point, "enospc", "run", config, cwd=tmp_path)
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    name = point.split(":")[0]
    line = assert_one_error_line(proc, "error: no space left on device while writing ")
    assert line.endswith(f"{name}; nothing was replaced"), line
    files = check_invariant(experiment_dir)
    assert files == {"results": sorted(["experiment.json", *kept]), "temporaries": []}
    manifest = orjson.loads((experiment_dir / "experiment.json").read_bytes())
    assert manifest["status"] == status


def test_full_disk_while_aggregating_again_keeps_the_previous_aggregate(
    tmp_path: Path, two_process_run: MultiProcessRun
) -> None:
    source = two_process_run.experiment_dir
    experiment_dir = tmp_path / "results" / "raw" / source.name
    shutil.copytree(source, experiment_dir)
    assert run_llem("aggregate", experiment_dir).returncode == 0
    aggregated = tmp_path / "results" / "aggregated" / f"{source.name}.json"
    before = hashlib.sha256(aggregated.read_bytes()).hexdigest()
    proc = run_driver(
        f"{source.name}.json:partial", "enospc", "aggregate", experiment_dir, cwd=tmp_path
    )
    line = assert_one_error_line(proc, f"no space left on device while writing {aggregated}")
    assert line.endswith("; nothing was replaced")
    assert hashlib.sha256(aggregated.read_bytes()).hexdigest() == before
    assert check_aggregated(tmp_path / "results") == [aggregated.name]
    assert not [p for p in aggregated.parent.iterdir() if TEMPORARY.match(p.name)]
