"""A run that fails or is interrupted says why in its manifest; `llem results prune` clears them.

The failures are real: a full disk while writing the result (`enospc`), and SIGINT
before it (`fault_driver.py`). `prune` removes exactly the failed and interrupted
experiments it was asked for, after asking; completed and running ones stay.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.orchestration.manifest import claim_experiment, write_manifest
from llenergymeasure.results.layout import ResultsLayout

from faults import quick_config_dict, run_driver
from llem_testing import run_llem, write_yaml


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A results root with a failed, an interrupted, a completed and a running experiment."""
    root = tmp_path_factory.mktemp("prune")
    config_dict = quick_config_dict(root / "results")
    config = write_yaml(root / "quick.yaml", config_dict)
    raw = root / "results" / "raw"
    ids: dict[str, str] = {}

    def the_new_one() -> str:
        (new,) = set(os.listdir(raw)) - set(ids.values())
        return new

    run_driver("process_0.json:partial", "enospc", "run", config, cwd=root)
    ids["failed"] = the_new_one()
    run_driver("process_0.json:before", "sigint", "run", config, cwd=root)
    ids["interrupted"] = the_new_one()
    assert run_llem("run", config, cwd=root).returncode == 0
    ids["completed"] = the_new_one()
    # A live run: its manifest names this test process as the launcher.
    layout = ResultsLayout(root / "results")
    experiment_id, experiment_dir = claim_experiment(layout, "live")
    write_manifest(experiment_dir, experiment_id, ExperimentConfig.model_validate(config_dict), 1)
    ids["running"] = experiment_id
    return {**ids, "root": str(root / "results")}


def manifest(results: dict[str, str], status: str) -> dict:
    return orjson.loads(
        Path(results["root"], "raw", results[status], "experiment.json").read_bytes()
    )


def test_the_manifest_of_a_failed_run_holds_its_error(results: dict[str, str]) -> None:
    failed = manifest(results, "failed")
    assert failed["status"] == "failed"
    assert failed["error"].startswith("no space left on device while writing "), failed["error"]
    interrupted = manifest(results, "interrupted")
    assert (interrupted["status"], interrupted["error"]) == ("interrupted", "interrupted by SIGINT")
    assert manifest(results, "completed")["error"] is None


def test_results_show_says_why_a_run_failed(results: dict[str, str]) -> None:
    proc = run_llem("results", "show", results["failed"], "--results-dir", results["root"])
    assert proc.returncode == 2
    assert "failed (error: no space left on device while writing " in proc.stderr, proc.stderr


def prune(results: dict[str, str], *flags: str, answer: str = "") -> subprocess.CompletedProcess:
    """`llem results prune` with `answer` typed at its question."""
    command = [sys.executable, "-m", "llenergymeasure", "results", "prune"]
    return subprocess.run(
        [*command, "--results-dir", results["root"], *flags],
        input=answer,
        capture_output=True,
        text=True,
        timeout=120,
    )


def present(results: dict[str, str]) -> set[str]:
    raw = set(os.listdir(Path(results["root"], "raw")))
    return {
        status
        for status in ("failed", "interrupted", "completed", "running")
        if results[status] in raw
    }


def test_prune_asks_first_and_removes_only_what_it_was_asked_for(results: dict[str, str]) -> None:
    declined = prune(results, "--failed", "--interrupted", answer="n\n")
    assert declined.returncode != 0
    assert results["failed"] in declined.stdout and results["interrupted"] in declined.stdout
    assert present(results) == {"failed", "interrupted", "completed", "running"}

    only_failed = prune(results, "--failed", "--yes")
    assert only_failed.returncode == 0, only_failed.stderr
    assert f"removed {Path(results['root'], 'raw', results['failed'])}" in only_failed.stdout
    assert present(results) == {"interrupted", "completed", "running"}

    rest = prune(results, "--failed", "--interrupted", "--died", answer="y\n")
    assert rest.returncode == 0, rest.stderr
    assert present(results) == {"completed", "running"}
    assert Path(results["root"], "aggregated", f"{results['completed']}.json").is_file()
