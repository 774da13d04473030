"""The benches and the GPU check still start: a refactor that breaks their imports fails here.

They are not run in full (they are benchmarks, and the GPU check needs a GPU); each is
started as a user would, and must answer with its help or its clear refusal.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from llem_testing import REPO

BENCHES = (
    "overhead.py",
    "sampler.py",
    "aggregate_scale.py",
    "mutation.py",
    "cli_startup.py",
    "engines.py",
)


def start(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "bench" / script), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("script", BENCHES)
def test_each_bench_answers_its_help(script: str) -> None:
    proc = start(script, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "usage:" in proc.stdout


def test_the_gpu_check_refuses_clearly_without_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: run `make gpu-check` itself")
    proc = start("gpu_check.py")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "gpu-check needs an NVIDIA GPU" in proc.stderr
    assert "Traceback" not in proc.stderr
