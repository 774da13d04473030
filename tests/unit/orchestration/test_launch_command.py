"""The accelerate command `llem run` builds, its refusals, and how a failure is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestration import failures
from llenergymeasure.orchestration.launcher import (
    ConfigSource,
    LaunchOptions,
    check_experiment,
    worker_command,
)

# What torch.distributed's launcher printed when rank 1 of 2 was killed (accelerate 1.15).
TORCHRUN_FAILURE = """\
W1122 21:31:42.821000 8762 torch/distributed/elastic/multiprocessing/api.py:1028] Sending process 8765 closing signal SIGTERM
E1122 21:31:42.837000 8762 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: -9) local_rank: 1 (pid: 8766) of binary: /venv/bin/python
Traceback (most recent call last):
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
======================================================
llenergymeasure.orchestration.worker FAILED
------------------------------------------------------
Failures:
[1]:
  time      : 2026-11-22_21:31:42
  host      : localhost
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 8765)  (SIGTERM)
  error_file: <N/A>
  traceback : Signal 15 (SIGTERM) received by PID 8765
------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-11-22_21:31:42
  host      : localhost
  rank      : 1 (local_rank: 1)
  exitcode  : -9 (pid: 8766)  (SIGKILL)
  error_file: <N/A>
  traceback : Signal 9 (SIGKILL) received by PID 8766
======================================================
"""  # noqa: E501


def config(tmp_path: Path, processes: int, num_prompts: int = 12):
    return validate_config(
        {
            "name": "tiny",
            "model": {"name": "builtin:tiny-llama"},
            "prompts": {"num_prompts": num_prompts},
            "processes": processes,
            "results_dir": str(tmp_path),
        }
    )


def test_several_processes_use_the_multi_gpu_launcher_even_on_cpu(tmp_path: Path) -> None:
    source = ConfigSource(Path("x.yaml"), ("generation.batch_size=2", "processes=3"))
    command = worker_command(config(tmp_path, 3), LaunchOptions(source), "tiny_1")
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert "--cpu" not in command
    joined = " ".join(command)
    assert "--multi_gpu --num_machines 1 --mixed_precision no --dynamo_backend no" in joined
    assert "--num_processes 3" in joined
    assert int(command[command.index("--main_process_port") + 1]) > 0
    assert joined.endswith(
        "-m llenergymeasure.orchestration.worker --config x.yaml "
        "--set generation.batch_size=2 --set processes=3 --experiment-id tiny_1"
    )


def test_an_accelerate_config_file_replaces_the_default_flags(tmp_path: Path) -> None:
    launch = LaunchOptions(ConfigSource(Path("x.yaml")), Path("launch/cpu_multi.yaml"), True)
    command = worker_command(config(tmp_path, 2), launch, "tiny_1")
    assert command[3:5] == ["--config_file", "launch/cpu_multi.yaml"]
    assert "--multi_gpu" not in command and command[-1] == "--verbose"


def test_one_process_runs_in_process(tmp_path: Path) -> None:
    assert worker_command(config(tmp_path, 1), LaunchOptions(), "tiny_1") is None


def test_more_processes_than_prompts_is_refused(tmp_path: Path) -> None:
    too_many = config(tmp_path, 4, num_prompts=3)
    with pytest.raises(ConfigError, match="processes: 4 exceeds the 3 prompts"):
        check_experiment(too_many, LaunchOptions(ConfigSource(Path("x.yaml"))))
    with pytest.raises(ConfigError, match="need the config file"):
        check_experiment(config(tmp_path, 2), LaunchOptions())


def test_the_failed_rank_and_signal_are_read_from_the_launcher_output() -> None:
    first, others = failures.failed_ranks(TORCHRUN_FAILURE)
    assert first == [failures.RankFailure(1, -9)]
    assert others == [failures.RankFailure(0, -15)]
    message = failures.describe(1, TORCHRUN_FAILURE)
    assert message.startswith("worker rank 1 was killed by SIGKILL (exit code -9)")
    assert "rank 0 was killed by SIGTERM" in message
    assert failures.describe(1, "no summary") == (
        "the worker launch exited with code 1 (its output is above)"
    )
    assert failures.RankFailure(2, 2).describe() == "rank 2 exited with code 2"


def test_only_the_workers_output_precedes_the_agent_report() -> None:
    lines = ["Traceback (most recent call last):", "ValueError: x", *TORCHRUN_FAILURE.splitlines()]
    assert failures.before_agent_report(lines) == lines[:2]
