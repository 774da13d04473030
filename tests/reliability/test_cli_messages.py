"""What the commands say: plain flags in `--help`, `--version`, exit codes of a stopped
campaign, the same resume check with `--dry-run`, files given by hand never silently
replaced, warnings that name their processes, and no made-up experiment id in a plan.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

from llenergymeasure import __version__
from llenergymeasure.cli import command

from faults import assert_one_error_line, quick_config_dict
from llem_testing import MultiProcessRun, run_llem, run_llem_here, write_yaml


def command_paths(cmd, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the tree, as the words that call it."""
    found = [prefix]
    for name, sub in getattr(cmd, "commands", {}).items():
        found += command_paths(sub, (*prefix, name))
    return found


@pytest.mark.parametrize("words", command_paths(command()), ids=" ".join)
def test_help_shows_flags_without_a_value_type(words: tuple[str, ...]) -> None:
    code, stdout, stderr = run_llem_here(*words, "--help")
    assert code == 0, stderr
    assert "--help" in stdout
    assert "<bool>" not in stdout, stdout


def test_version() -> None:
    code, stdout, _ = run_llem_here("--version")
    assert (code, stdout.strip()) == (0, f"llem {__version__}")


def campaign_file(root: Path, batch_sizes: list[int]) -> Path:
    base = quick_config_dict(root / "results")
    base["prompts"]["num_prompts"] = 40
    base["generation"]["max_new_tokens"] = 16
    data = {
        "campaign_name": "stopped",
        "base": base,
        "sweep": {"generation.batch_size": batch_sizes},
        "gap_s": 30,
    }
    return write_yaml(root / "sweep.yaml", data)


def stopped_campaign(root: Path, signum: int) -> subprocess.CompletedProcess:
    """The real `llem campaign`, sent `signum` once its first experiment is under way."""
    path = campaign_file(root, [1, 2])
    proc = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure", "campaign", str(path)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    raw = root / "results" / "raw"
    deadline = time.monotonic() + 120
    while not any(raw.glob("*/experiment.json")):
        assert proc.poll() is None and time.monotonic() < deadline, "no experiment started"
        time.sleep(0.05)
    os.kill(proc.pid, signum)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_campaign_exits_like_a_stopped_run(
    tmp_path: Path, signum: int, code: int
) -> None:
    proc = stopped_campaign(tmp_path, signum)
    assert proc.returncode == code, proc.stderr
    manifest = tmp_path / "results" / "campaigns" / "stopped" / "manifest.json"
    assert orjson.loads(manifest.read_bytes())["entries"][0]["status"] == "interrupted"
    if signum != signal.SIGTERM:
        return
    # The sweep is edited: --resume refuses, and --resume --dry-run refuses alike.
    campaign_file(tmp_path, [1, 4])
    path = tmp_path / "sweep.yaml"
    real = run_llem("campaign", path, "--resume", cwd=tmp_path)
    line = assert_one_error_line(real, "restore the file, or choose another campaign_name")
    dry = run_llem("campaign", path, "--resume", "--dry-run", cwd=tmp_path)
    assert assert_one_error_line(dry, "restore the file") == line


@pytest.mark.parametrize(
    "args",
    [
        ["export", "nope_1", "--csv", "--out", "{file}"],
        ["results", "compare", "nope_1", "--csv", "--out", "{file}"],
        ["plot", "power", "nope_1", "--out", "{file}"],
        ["report", "nope_1", "--out", "{file}"],
    ],
    ids=["export --out", "compare --csv --out", "plot --out", "report --out"],
)
def test_a_file_given_by_hand_is_not_overwritten_without_force(
    tmp_path: Path, args: list[str]
) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("my own notes\n")
    filled = [part.format(file=mine) for part in args]
    code, _, stderr = run_llem_here(*filled, "--results-dir", tmp_path / "results")
    assert code == 2, stderr
    assert f"{mine} exists; pass --force to overwrite it" in stderr
    assert mine.read_text() == "my own notes\n"
    code, _, stderr = run_llem_here(*filled, "--results-dir", tmp_path / "results", "--force")
    assert code == 2 and "exists; pass --force" not in stderr, stderr
    assert mine.read_text() == "my own notes\n"  # nothing to export: still not written


def test_warnings_of_several_processes_name_them(two_process_run: MultiProcessRun) -> None:
    (aggregated,) = (two_process_run.results_dir / "aggregated").iterdir()
    warnings = orjson.loads(aggregated.read_bytes())["warnings"]
    assert all(w["processes"] in ([0], [1], [0, 1]) for w in warnings), warnings
    shared = [w for w in warnings if w["processes"] == [0, 1]]
    assert shared, warnings  # one message given by both is listed once
    shown = run_llem(
        "results",
        "show",
        two_process_run.experiment_dir.name,
        "--results-dir",
        two_process_run.results_dir,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"warning {shared[0]['code']} (processes 0, 1): " in shown.stdout


def test_a_dry_run_prints_no_experiment_id_of_its_own(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "q.yaml", quick_config_dict(tmp_path / "results"))
    code, stdout, stderr = run_llem_here("run", path, "--processes", "2", "--dry-run")
    assert code == 0, stderr
    assert "--experiment-id '<new-experiment-id>'" in stdout, stdout
    assert "quick_2" not in stdout
    config = yaml.safe_load(stdout.split("# resolved config", 1)[1])
    assert config["processes"] == 2
