"""Workers started straight from `accelerate launch` on a machine whose model cache is empty.

Under `torch.distributed`, transformers writes config and weights from rank 0 only, so a
build that ran inside the process group (on whichever rank won the lock) could leave a
folder stamped complete with only the tokenizer in it. Each launch here starts from a new,
empty cache: the race has a fresh chance every time and must never be lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from llenergymeasure.models.builtin import incompleteness
from llenergymeasure.orchestration.launcher import DEFAULT_LAUNCH_FLAGS, free_port

from llem_testing import run_llem, tiny_config_dict, write_yaml

WORKER = "llenergymeasure.orchestration.worker"
LAUNCHES = 3


def launch_workers(config_path: Path, cache: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        *DEFAULT_LAUNCH_FLAGS,
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        "-m",
        WORKER,
        "--config",
        str(config_path),
    ]
    env = {**os.environ, "LLEM_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_two_workers_on_an_empty_cache_build_once_and_aggregate(tmp_path: Path) -> None:
    for launch in range(LAUNCHES):
        root = tmp_path / f"launch-{launch}"
        root.mkdir()
        cache = root / "empty-cache"
        config_path = write_yaml(root / "tiny.yaml", tiny_config_dict(root / "results"))

        proc = launch_workers(config_path, cache)

        assert proc.returncode == 0, proc.stderr[-4000:]
        assert incompleteness(cache / "models" / "tiny-llama") is None
        assert proc.stderr.count("Building builtin:tiny-llama into") == 1, proc.stderr
        (experiment_dir,) = (root / "results" / "raw").iterdir()
        aggregated = run_llem("aggregate", experiment_dir, cwd=root)
        assert aggregated.returncode == 0, aggregated.stderr
        result = orjson.loads(
            (root / "results" / "aggregated" / f"{experiment_dir.name}.json").read_bytes()
        )
        assert result["aggregation"]["num_processes"] == 2
        assert result["num_requests"] == 12
