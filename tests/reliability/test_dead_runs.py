"""A run killed with SIGKILL cannot record its end: llem shows it as `died`, not `running`.

The manifest keeps saying `running` (nothing is rewritten); `llem results list` and
`llem results show` see that the launcher it names has ended and say `died`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from faults import assert_one_error_line, quick_config_dict
from llem_testing import run_llem, write_yaml


def killed_run(root: Path) -> Path:
    """A `llem run` SIGKILLed once its manifest exists; its experiment directory."""
    config = quick_config_dict(root / "results")
    config["prompts"]["num_prompts"] = 200
    config["prompts"]["truncate"] = True  # some builtin prompts exceed tiny-llama's context
    config["generation"]["max_new_tokens"] = 32
    path = write_yaml(root / "long.yaml", config)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure", "run", str(path)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    raw = root / "results" / "raw"
    deadline = time.monotonic() + 120
    while not any(raw.glob("*/experiment.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "no manifest appeared"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (experiment_dir,) = raw.iterdir()
    return experiment_dir


def test_a_killed_run_is_shown_as_died(tmp_path: Path) -> None:
    experiment_dir = killed_run(tmp_path)
    manifest = experiment_dir / "experiment.json"
    assert orjson.loads(manifest.read_bytes())["status"] == "running"
    before = manifest.read_bytes()

    listed = run_llem("results", "list", "--results-dir", tmp_path / "results")
    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if experiment_dir.name in line]
    assert "died" in row and "running" not in row, listed.stdout

    shown = run_llem("results", "show", experiment_dir.name, "--results-dir", tmp_path / "results")
    assert_one_error_line(shown, f"{experiment_dir.name}: died (its run ended without recording")
    assert manifest.read_bytes() == before
