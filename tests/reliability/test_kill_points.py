"""SIGKILL a real `llem run` at every stage of every file it writes; nothing is ever wrong.

Each point runs the real command (one in-process worker on builtin:tiny-llama) under
`fault_driver.py`, which kills it with SIGKILL when it reaches that point. Afterwards:
a marker exists exactly when the kill came after the marker's rename, and then it
matches a whole result; every file under its own name is whole; `llem aggregate`
either succeeds or refuses in one line.
"""

from __future__ import annotations

import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from faults import (
    assert_one_error_line,
    check_aggregated,
    check_invariant,
    quick_config_dict,
    run_driver,
)
from llem_testing import run_llem, write_yaml

STAGES = ("before", "partial", "written", "synced", "replaced")
WORKER_FILES = ("process_0_timeseries.parquet", "process_0.json", ".completed_0")
# Every write of a one-process run, in the order they happen.
POINTS = [
    "experiment.json:partial",
    "experiment.json:replaced",
    *(f"{name}:{stage}" for name in WORKER_FILES for stage in STAGES),
    "quick_*.json:partial",
    "quick_*.json:replaced",
    "experiment.json:partial:2",
    "experiment.json:replaced:2",
]
MARKER_FROM = POINTS.index(".completed_0:replaced")
AGGREGATE_FROM = POINTS.index("quick_*.json:replaced")


@dataclass(frozen=True)
class Killed:
    """One run killed at one point, and what it left."""

    root: Path
    proc: subprocess.CompletedProcess

    @property
    def experiment_dir(self) -> Path:
        (experiment_dir,) = (self.root / "results" / "raw").iterdir()
        return experiment_dir


def kill_at(root: Path, point: str) -> Killed:
    config = write_yaml(root / "quick.yaml", quick_config_dict(root / "results"))
    return Killed(root, run_driver(point, "kill", "run", config, cwd=root))


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Killed]:
    """Every point's run, two at a time (they are short and mostly start-up)."""
    roots = [tmp_path_factory.mktemp(f"kill{k}") for k in range(len(POINTS))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(POINTS, pool.map(kill_at, roots, POINTS), strict=True))


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_leaves_a_whole_result_with_its_marker_or_no_marker(
    point: str, killed_runs: dict[str, Killed]
) -> None:
    run = killed_runs[point]
    assert run.proc.returncode == -signal.SIGKILL, run.proc.stderr
    files = check_invariant(run.experiment_dir)
    marker_expected = POINTS.index(point) >= MARKER_FROM
    assert (".completed_0" in files["results"]) == marker_expected, files
    if point != "experiment.json:partial":
        assert "experiment.json" in files["results"], files
    aggregated = check_aggregated(run.root / "results")
    assert bool(aggregated) == (POINTS.index(point) >= AGGREGATE_FROM)


@pytest.mark.parametrize("point", POINTS)
def test_aggregate_after_a_kill_succeeds_or_refuses_in_one_line(
    point: str, killed_runs: dict[str, Killed]
) -> None:
    run = killed_runs[point]
    proc = run_llem("aggregate", run.experiment_dir)
    if POINTS.index(point) >= MARKER_FROM:
        assert proc.returncode == 0, proc.stderr
        assert check_aggregated(run.root / "results") == [f"{run.experiment_dir.name}.json"]
    elif point == "experiment.json:partial":
        assert_one_error_line(proc, "experiment.json: not found")
    else:
        line = assert_one_error_line(proc, "no completion marker .completed_0")
        assert "ended without finishing" in line
