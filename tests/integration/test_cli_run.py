"""`llem run` as a user runs it: summary, files, listing, and a kill that leaves no marker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from llem_testing import run_llem, tiny_config_dict, write_yaml


def test_run_prints_summary_and_results_can_be_listed(
    tmp_path: Path, tiny_config_file: Path
) -> None:
    proc = run_llem("run", tiny_config_file, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for label in (
        "tokens (in / out)",
        "energy method",
        "energy / output token",
        "FLOPs",
        "TTFT p50 / p95",
        "ITL p50 / p95",
        "aggregated result",
    ):
        assert label in proc.stdout, label
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    listed = run_llem("results", "list", "--results-dir", tmp_path / "results")
    assert listed.returncode == 0 and experiment_dir.name in listed.stdout
    shown = run_llem("results", "show", experiment_dir.name, "--results-dir", tmp_path / "results")
    assert shown.returncode == 0 and "energy method" in shown.stdout
    again = run_llem("aggregate", experiment_dir)
    assert again.returncode == 0, again.stderr


def test_run_killed_midway_leaves_no_marker(tmp_path: Path) -> None:
    config = tiny_config_dict(
        tmp_path / "results",
        prompts={"num_prompts": 250, "truncate": True},
        generation={"max_new_tokens": 64, "batch_size": 1},
        measurement={"baseline": {"duration_s": 0.5, "cache_ttl_s": 0}},
    )
    path = write_yaml(tmp_path / "long.yaml", config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure", "run", str(path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    raw = tmp_path / "results" / "raw"
    deadline = time.monotonic() + 120
    while not any(raw.glob("*/experiment.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    time.sleep(4.0)  # into warmup or inference
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (experiment_dir,) = raw.iterdir()
    assert not list(experiment_dir.glob(".completed_*"))
    assert not (tmp_path / "results" / "aggregated").exists()
    manifest = orjson.loads((experiment_dir / "experiment.json").read_bytes())
    assert manifest["experiment_id"] == experiment_dir.name
    refused = run_llem("aggregate", experiment_dir)
    assert refused.returncode == 2 and "no completion marker" in refused.stderr
