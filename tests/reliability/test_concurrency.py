"""Runs side by side: unique ids, private temporary files, and an honest "still running"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.errors import IncompleteExperiment, ResultsError
from llenergymeasure.fileio import atomic_target, atomic_write_bytes
from llenergymeasure.orchestration import manifest as manifest_module
from llenergymeasure.orchestration.manifest import claim_experiment, write_manifest
from llenergymeasure.results.aggregation import aggregate_experiment
from llenergymeasure.results.layout import ResultsLayout, manifest_path

from faults import (
    TEMPORARY,
    assert_one_error_line,
    check_aggregated,
    check_invariant,
    llem_running,
    long_config_dict,
    quick_config_dict,
    wait_for_file,
)
from llem_testing import run_llem, write_yaml


def test_two_runs_at_once_in_one_results_dir_never_collide(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "quick.yaml", quick_config_dict(tmp_path / "results"))
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "llenergymeasure", "run", str(config)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    experiment_dirs = sorted((tmp_path / "results" / "raw").iterdir())
    assert len(experiment_dirs) == 2
    pids = set()
    for experiment_dir in experiment_dirs:
        files = check_invariant(experiment_dir)
        assert files["temporaries"] == [] and ".completed_0" in files["results"]
        result = orjson.loads((experiment_dir / "process_0.json").read_bytes())
        assert result["experiment_id"] == experiment_dir.name
        pids.add(result["pid"])
    assert len(pids) == 2
    assert check_aggregated(tmp_path / "results") == [f"{d.name}.json" for d in experiment_dirs]


def test_a_taken_id_is_drawn_again_and_a_given_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = ResultsLayout(tmp_path / "results")
    (layout.raw_root / "x_1").mkdir(parents=True)
    drawn = iter(["x_1", "x_1", "x_2"])
    monkeypatch.setattr(manifest_module, "new_experiment_id", lambda name: next(drawn))
    assert claim_experiment(layout, "x") == ("x_2", layout.raw_root / "x_2")
    with pytest.raises(ResultsError, match="x_1 exists already; choose another experiment id"):
        claim_experiment(layout, "x", "x_1")


def test_writers_of_one_file_never_share_a_temporary_and_readers_see_whole_files(
    tmp_path: Path,
) -> None:
    target = tmp_path / "shared.json"
    versions = {bytes([65 + k]) * (4096 * (k + 1)) for k in range(8)}
    atomic_write_bytes(target, min(versions))
    seen: set[bytes] = set()
    stop = threading.Event()

    def read_until_stopped() -> None:
        while not stop.is_set():
            seen.add(target.read_bytes())

    def write_all(data: bytes) -> None:
        for _ in range(25):
            atomic_write_bytes(target, data)

    reader = threading.Thread(target=read_until_stopped)
    writers = [threading.Thread(target=write_all, args=(data,)) for data in versions]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    reader.join()
    assert seen <= versions, "a reader saw a partial file"
    assert [p.name for p in tmp_path.iterdir()] == ["shared.json"]
    with atomic_target(target) as first, atomic_target(target) as second:
        assert first != second and TEMPORARY.match(first.name) and TEMPORARY.match(second.name)
        assert f".{os.getpid()}." in first.name
        first.write_bytes(b"1")
        second.write_bytes(b"2")


def test_aggregate_says_an_experiment_is_still_running(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "long.yaml", long_config_dict(tmp_path / "results"))
    with llem_running("run", config, cwd=tmp_path) as (proc, _):
        manifest = wait_for_file("results/raw/*/experiment.json", tmp_path, proc, timeout_s=120)
        running = run_llem("aggregate", manifest.parent)
        proc.send_signal(signal.SIGKILL)
    line = assert_one_error_line(running, "still running (started ")
    assert "UTC, 0 of 1 processes complete); aggregate it when it has finished" in line
    after = run_llem("aggregate", manifest.parent)
    line = assert_one_error_line(after, "no completion marker .completed_0")
    assert f"its run, pid {proc.pid}, ended without finishing" in line
    assert orjson.loads(manifest.read_bytes())["status"] == "running"


def fabricated_experiment(root: Path, **launcher: object) -> tuple[ResultsLayout, str]:
    """A manifest of one expected process, nothing else; launcher fields as given."""
    layout = ResultsLayout(root / "results")
    config = validate_config({"name": "x", "model": {"name": "builtin:tiny-llama"}})
    experiment_id, experiment_dir = claim_experiment(layout, "x")
    manifest = write_manifest(experiment_dir, experiment_id, config, 1)
    path = manifest_path(experiment_dir)
    path.write_bytes(orjson.dumps({**orjson.loads(path.read_bytes()), **launcher}))
    assert manifest.launcher_pid == os.getpid()
    return layout, experiment_id


@pytest.mark.parametrize(
    ("launcher", "expected"),
    [
        ({}, "still running (started "),
        ({"launcher_host": "elsewhere"}, "its manifest says running (started "),
        ({"launcher_pid": None}, "its manifest says running (started "),
        ({"created_at": "2000-01-01T00:00:00Z"}, f"its run, pid {os.getpid()}, ended"),
    ],
    ids=["alive here", "other host", "no pid", "pid reused"],
)
def test_what_aggregate_says_of_a_running_manifest(
    tmp_path: Path, launcher: dict, expected: str
) -> None:
    layout, experiment_id = fabricated_experiment(tmp_path, **launcher)
    with pytest.raises(IncompleteExperiment) as refused:
        aggregate_experiment(layout, experiment_id)
    assert expected in str(refused.value)
    if launcher.get("launcher_host"):
        assert "on elsewhere, 0 of 1 processes complete" in str(refused.value)
