"""Helpers of the reliability tests: the fault driver, a seconds-long config, the invariant.

The invariant every fault must keep (docs/design.md section 3): a `.completed_<i>` marker
exists only beside a whole, parseable `process_<i>.json` whose sha256 it holds; every
file under its own name is whole and readable; anything else is a hidden temporary
(`.<name>.<pid>.<token>.tmp`) that no reader takes for a result.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq

from llenergymeasure.core.timeseries import TIMESERIES_SCHEMA
from llenergymeasure.domain.experiment import (
    AggregatedResult,
    ExperimentManifest,
    RawProcessResult,
)
from llenergymeasure.results.layout import read_model
from llenergymeasure.results.verification import verified_process_result

from llem_testing import LineReader, tiny_config_dict

DRIVER = Path(__file__).resolve().parent / "fault_driver.py"
TEMPORARY = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")
RESULT_FILES = re.compile(
    r"^(experiment\.json|process_\d+\.json|process_\d+_timeseries\.parquet|\.completed_\d+)$"
)


def quick_config_dict(results_dir: Path, **sections: Any) -> dict[str, Any]:
    """The shortest real run: 2 prompts of 2 tokens, no warmup, no baseline."""
    return tiny_config_dict(
        results_dir,
        name="quick",
        prompts={"num_prompts": 2},
        generation={"max_new_tokens": 2, "batch_size": 2},
        measurement={"warmup": {"enabled": False}, "baseline": {"enabled": False}},
        **sections,
    )


def run_driver(
    at: str, action: str, *llem_args: str | Path, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess:
    """`llem` under the fault driver, acting `action` at the write point `at`."""
    command = [sys.executable, str(DRIVER), "--at", at, "--do", action, "--"]
    return subprocess.run(
        [*command, *map(str, llem_args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr that report an error (what the user is told)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_error_line(proc: subprocess.CompletedProcess, expected: str) -> str:
    """Exit code 2, one `error:` line holding `expected`, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    (line,) = error_lines(proc.stderr)
    assert expected in line, line
    return line


def check_invariant(experiment_dir: Path) -> dict[str, list[str]]:
    """Assert the invariant on an experiment directory; return its files by kind.

    Returns:
        `results` (files under their own names) and `temporaries` (hidden `.tmp` files).

    """
    names = sorted(p.name for p in experiment_dir.iterdir())
    temporaries = [n for n in names if TEMPORARY.match(n)]
    results = [n for n in names if RESULT_FILES.match(n)]
    assert sorted(temporaries + results) == names, f"unexpected files: {names}"
    for name in results:
        check_whole(experiment_dir / name)
    for marker in (n for n in results if n.startswith(".completed_")):
        index = int(marker.removeprefix(".completed_"))
        verified_process_result(experiment_dir, index, experiment_dir.name)
    return {"results": results, "temporaries": temporaries}


def check_whole(path: Path) -> None:
    """A file under its own name is complete and readable."""
    if path.name == "experiment.json":
        read_model(path, ExperimentManifest)
    elif path.suffix == ".parquet":
        assert pq.read_table(path).schema.equals(TIMESERIES_SCHEMA), path
    elif path.name.startswith("process_"):
        read_model(path, RawProcessResult)


def check_aggregated(results_dir: Path) -> list[str]:
    """Every aggregated result is whole; returns their file names."""
    root = results_dir / "aggregated"
    names = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    whole = [n for n in names if not TEMPORARY.match(n)]
    for name in whole:
        read_model(root / name, AggregatedResult)
    return whole


def long_config_dict(results_dir: Path) -> dict[str, Any]:
    """A run that is still in inference many seconds after it started."""
    return tiny_config_dict(
        results_dir,
        name="long",
        prompts={"num_prompts": 200, "truncate": True},
        generation={"max_new_tokens": 64, "batch_size": 1},
    )


@contextmanager
def llem_running(*args: str | Path, cwd: Path) -> Iterator[tuple[subprocess.Popen, LineReader]]:
    """The real CLI in the background, its stderr collected (stdout discarded).

    Whatever it started is killed on the way out, should a test fail before it ends.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        yield proc, LineReader(proc.stderr)
    finally:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
        proc.wait()


def wait_for_file(pattern: str, root: Path, proc: subprocess.Popen, timeout_s: float) -> Path:
    """The first file under `root` matching `pattern`, once it exists."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = sorted(root.glob(pattern))
        if found:
            return found[0]
        assert proc.poll() is None, f"the run ended with {proc.returncode} before {pattern}"
        assert time.monotonic() < deadline, f"no {pattern} under {root}"
        time.sleep(0.05)
