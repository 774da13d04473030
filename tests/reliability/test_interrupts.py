"""Ctrl-C (SIGINT) and SIGTERM on a real `llem run`: workers stop, nothing is lost.

The run exits 130 (SIGINT) or 143 (SIGTERM), its manifest says `interrupted`, no marker
is written for unfinished work, the files already written stay whole, and no worker is
left running.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import orjson
import psutil
import pytest

from faults import (
    assert_one_error_line,
    check_invariant,
    llem_running,
    long_config_dict,
    quick_config_dict,
    run_driver,
)
from llem_testing import run_llem, write_yaml

SIGNALS = [(signal.SIGINT, 130), (signal.SIGTERM, 143)]


def manifest_status(experiment_dir: Path) -> str:
    return orjson.loads((experiment_dir / "experiment.json").read_bytes())["status"]


def processes_of(experiment_id: str) -> list[psutil.Process]:
    """Live processes whose command line names the experiment (its workers)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if experiment_id in " ".join(proc.info["cmdline"] or []) and proc.is_running():
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
        except psutil.Error:
            continue
    return found


def assert_interrupted(experiment_dir: Path, stderr: str, name: str) -> None:
    """Marked interrupted, said so in one line, no marker, no temporary left."""
    assert manifest_status(experiment_dir) == "interrupted"
    (said,) = [line for line in stderr.splitlines() if line.startswith("interrupted by")]
    assert said.startswith(f"interrupted by {name}: ") and experiment_dir.name in said, said
    assert said.endswith("is marked interrupted; the files already written are kept"), said
    assert "Traceback" not in stderr, stderr
    files = check_invariant(experiment_dir)
    assert not [n for n in files["results"] if n.startswith(".completed_")], files
    assert files["temporaries"] == [], files


def interrupt(tmp_path: Path, signum: int, processes: int, code: int) -> tuple[Path, str, float]:
    """Start a long run, signal `llem` once every worker has loaded its model, wait.

    Returns:
        The experiment directory, what `llem` wrote on stderr, seconds it took to stop.

    """
    config = write_yaml(tmp_path / "long.yaml", long_config_dict(tmp_path / "results"))
    with llem_running("run", config, "-n", str(processes), cwd=tmp_path) as (proc, reader):
        for rank in range(processes):
            label = f"[rank {rank}] " if processes > 1 else ""
            reader.wait_for(f"{label}loaded builtin:tiny-llama", timeout_s=120)
        time.sleep(1.0)  # into warmup or inference
        (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
        assert len(processes_of(experiment_dir.name)) >= (3 if processes > 1 else 0)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        sent = time.monotonic()
        proc.send_signal(signum)
        assert proc.wait(timeout=90) == code
        stopped_s = time.monotonic() - sent
        return experiment_dir, reader.finish(), stopped_s


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_signal_stops_a_one_process_run(tmp_path: Path, signum: int, code: int) -> None:
    experiment_dir, stderr, stopped_s = interrupt(tmp_path, signum, 1, code)
    assert_interrupted(experiment_dir, stderr, signal.Signals(signum).name)
    assert stopped_s < 15, stopped_s
    refused = run_llem("aggregate", experiment_dir)
    assert_one_error_line(refused, "no completion marker .completed_0")


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=["SIGINT", "SIGTERM"])
def test_signal_stops_every_worker_of_a_two_process_run(
    tmp_path: Path, signum: int, code: int
) -> None:
    experiment_dir, stderr, stopped_s = interrupt(tmp_path, signum, 2, code)
    name = signal.Signals(signum).name
    assert_interrupted(experiment_dir, stderr, name)
    assert stopped_s < 30, stopped_s
    for rank in (0, 1):
        assert f"[rank {rank}] stopped by {name}; files already written are kept" in stderr
    time.sleep(0.5)
    assert processes_of(experiment_dir.name) == [], "a worker outlived the run"
    refused = run_llem("aggregate", experiment_dir)
    assert_one_error_line(refused, "process 0: no completion marker .completed_0")


def test_sigterm_after_the_marker_keeps_the_finished_result(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "quick.yaml", quick_config_dict(tmp_path / "results"))
    proc = run_driver(".completed_0:replaced", "sigterm", "run", config, cwd=tmp_path)
    assert proc.returncode == 143, proc.stderr
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    assert manifest_status(experiment_dir) == "interrupted"
    files = check_invariant(experiment_dir)
    assert ".completed_0" in files["results"] and files["temporaries"] == []
    aggregated = run_llem("aggregate", experiment_dir)
    assert aggregated.returncode == 0, aggregated.stderr


@pytest.mark.parametrize("stage", ["partial", "synced"])
def test_sigint_during_a_write_abandons_only_that_file(tmp_path: Path, stage: str) -> None:
    config = write_yaml(tmp_path / "quick.yaml", quick_config_dict(tmp_path / "results"))
    proc = run_driver(f"process_0.json:{stage}", "sigint", "run", config, cwd=tmp_path)
    assert proc.returncode == 130, proc.stderr
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    assert_interrupted(experiment_dir, proc.stderr, "SIGINT")
    files = check_invariant(experiment_dir)
    assert files["results"] == ["experiment.json", "process_0_timeseries.parquet"], files
