"""Real worker processes on this machine: `llem run --processes 2`, two "nodes", a kill."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import psutil
import pytest

from llenergymeasure.config.loader import load_config
from llenergymeasure.orchestration.launcher import free_port
from llenergymeasure.prompts import load_prompts

from llem_testing import REPO, LineReader, MultiProcessRun, run_llem, tiny_config_dict, write_yaml

WORKER = "llenergymeasure.orchestration.worker"


def read_json(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def processes(experiment_dir: Path) -> list[dict]:
    return [read_json(experiment_dir / f"process_{i}.json") for i in (0, 1)]


def test_two_worker_processes_really_ran(two_process_run: MultiProcessRun) -> None:
    names = sorted(p.name for p in two_process_run.experiment_dir.iterdir())
    assert names == [
        ".completed_0",
        ".completed_1",
        "experiment.json",
        "process_0.json",
        "process_0_timeseries.parquet",
        "process_1.json",
        "process_1_timeseries.parquet",
    ]
    first, second = processes(two_process_run.experiment_dir)
    assert first["pid"] != second["pid"]
    assert [first["process_index"], second["process_index"]] == [0, 1]
    assert first["num_processes"] == second["num_processes"] == 2
    manifest = read_json(two_process_run.experiment_dir / "experiment.json")
    assert manifest["expected_num_processes"] == 2 and manifest["status"] == "completed"
    command = " ".join(manifest["launch_command"])
    assert "accelerate.commands.launch --multi_gpu" in command and "--num_processes 2" in command
    assert f"-m {WORKER}" in command and f"--experiment-id {manifest['experiment_id']}" in command
    assert re.search(r"processes +│ 2 ", two_process_run.proc.stdout)


def test_the_shards_together_are_exactly_the_input_prompts(
    two_process_run: MultiProcessRun,
) -> None:
    config = load_config(two_process_run.config_path)
    expected = [p.id for p in load_prompts(config.prompts)]
    shards = [
        [r["prompt_id"] for r in p["requests"]] for p in processes(two_process_run.experiment_dir)
    ]
    assert all(shards) and not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(expected)


def test_aggregate_sums_work_and_counts_cpu_energy_once(two_process_run: MultiProcessRun) -> None:
    parts = processes(two_process_run.experiment_dir)
    aggregated = read_json(
        two_process_run.results_dir / "aggregated" / f"{two_process_run.experiment_dir.name}.json"
    )
    for key in ("num_requests", "input_tokens", "output_tokens"):
        assert aggregated[key] == sum(p[key] for p in parts), key
    for key in ("total_flops", "flops_useful", "flops_executed"):
        assert aggregated[key] == sum(p["flops"][key] for p in parts), key
    info = aggregated["aggregation"]
    assert info["num_processes"] == 2 and not info["partial"]
    assert info["temporal_overlap_verified"] and info["gpu_attribution_verified"]
    devices = [d for p in parts for r in p["energy_readings"] for d in r["devices"]]
    assert {d["scope"] for d in devices} == {"machine"}
    longest = max(parts, key=lambda p: p["energy_window_s"])
    raw = [p["energy_breakdown"]["raw_j"] for p in parts]
    assert aggregated["energy_breakdown"]["raw_j"] == longest["energy_breakdown"]["raw_j"]
    assert aggregated["energy_breakdown"]["raw_j"] < sum(raw)


def test_every_energy_window_stays_open_until_all_processes_are_done(
    two_process_run: MultiProcessRun,
) -> None:
    parts = processes(two_process_run.experiment_dir)
    for p in parts:
        assert p["energy_window_s"] >= p["inference_duration_s"]
        assert p["energy_window_start_unix_s"] == p["inference_start_unix_s"]
    ends = [p["energy_window_end_unix_s"] for p in parts]
    busy_ends = [p["inference_end_unix_s"] for p in parts]
    assert max(ends) - min(ends) < 0.5  # one common window, closed after a barrier
    assert min(ends) >= max(busy_ends) - 0.05  # closed after the last process finished
    for p in parts:
        (cpu,) = p["energy_components"]
        assert cpu["window_s"] == p["energy_window_s"]
        assert p["tokens_per_second"] == pytest.approx(
            p["output_tokens"] / p["inference_duration_s"]
        )


def test_dry_run_prints_the_launch_command_and_creates_nothing(tmp_path: Path) -> None:
    config_path = write_yaml(tmp_path / "tiny.yaml", tiny_config_dict(tmp_path / "results"))
    proc = run_llem("run", config_path, "--processes", "2", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "accelerate.commands.launch --multi_gpu" in proc.stdout
    assert f"-m {WORKER} --config {config_path} --set processes=2" in proc.stdout
    assert "processes: 2" in proc.stdout and "max_new_tokens: 8" in proc.stdout
    assert not (tmp_path / "results").exists()


def node_command(machine_rank: int, port: int, config_path: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "launch" / "multi_node.yaml"),
        "--num_machines",
        "2",
        "--num_processes",
        "2",
        "--machine_rank",
        str(machine_rank),
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(port),
        "-m",
        WORKER,
        "--config",
        str(config_path),
    ]


def test_two_nodes_on_one_machine_make_one_experiment(tmp_path: Path) -> None:
    config_path = write_yaml(tmp_path / "tiny.yaml", tiny_config_dict(tmp_path / "results"))
    port = free_port()
    nodes = [
        subprocess.Popen(
            node_command(rank, port, config_path),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    manifest = read_json(experiment_dir / "experiment.json")
    assert manifest["expected_num_processes"] == 2 and manifest["status"] == "completed"
    assert "[rank 0]" in outputs[0] and "[rank 1]" in outputs[1]
    aggregated = run_llem("aggregate", experiment_dir)
    assert aggregated.returncode == 0, aggregated.stderr
    assert re.search(r"processes +│ 2 ", aggregated.stdout)
    result = read_json(tmp_path / "results" / "aggregated" / f"{experiment_dir.name}.json")
    assert result["aggregation"]["num_processes"] == 2
    assert result["num_requests"] == 12


def worker_of_rank(launcher: psutil.Process, rank: int) -> psutil.Process:
    for child in launcher.children(recursive=True):
        try:
            if WORKER in child.cmdline() and child.environ().get("RANK") == str(rank):
                return child
        except psutil.Error:
            continue
    raise AssertionError(f"no worker process of rank {rank}")


def test_a_killed_worker_is_named_and_its_experiment_refused(tmp_path: Path) -> None:
    config = tiny_config_dict(
        tmp_path / "results",
        prompts={"num_prompts": 200, "truncate": True},
        generation={"max_new_tokens": 64, "batch_size": 1},
    )
    config_path = write_yaml(tmp_path / "long.yaml", config)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "llenergymeasure", "run", str(config_path), "-n", "2", "-v"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    reader = LineReader(launcher.stderr)
    reader.wait_for("[rank 1] inference 1/", timeout_s=120)
    worker_of_rank(psutil.Process(launcher.pid), 1).send_signal(signal.SIGKILL)
    assert launcher.wait(timeout=120) != 0
    seen = reader.finish().splitlines()
    (error,) = [line for line in seen if line.startswith("error:")]
    assert "worker rank 1 was killed by SIGKILL (exit code -9)" in error
    assert "marked failed and not aggregated" in error
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    assert not (experiment_dir / ".completed_1").exists()
    assert read_json(experiment_dir / "experiment.json")["status"] == "failed"
    assert not (tmp_path / "results" / "aggregated").exists()
    refused = run_llem("aggregate", experiment_dir)
    assert refused.returncode == 2
    assert "process 1: no completion marker .completed_1" in refused.stderr


def test_workers_refuse_to_rejoin_a_finished_experiment(two_process_run: MultiProcessRun) -> None:
    before = {p.name: p.read_bytes() for p in two_process_run.experiment_dir.iterdir()}
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "launch" / "cpu_multi.yaml"),
        "--main_process_port",
        str(free_port()),
        "-m",
        WORKER,
        "--config",
        str(two_process_run.config_path),
        "--experiment-id",
        two_process_run.experiment_dir.name,
    ]
    proc = subprocess.run(
        command, cwd=two_process_run.config_path.parent, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert (
        "ERROR   [rank 0]" in proc.stderr and "is completed and holds process_0.json" in proc.stderr
    )
    assert "ERROR   [rank 1] rank 0 could not start the experiment" in proc.stderr
    assert {p.name: p.read_bytes() for p in two_process_run.experiment_dir.iterdir()} == before
