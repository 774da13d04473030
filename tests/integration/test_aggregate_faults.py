"""`llem aggregate` on damaged copies of a real two-process experiment.

Each case copies the experiment, damages the copy, and expects exit code 2 with one
line naming the problem, and every file of the copy (and of the original) untouched.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from llenergymeasure.results.layout import write_marker

from llem_testing import MultiProcessRun, run_llem


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in directory.iterdir()}


def edit_result(experiment_dir: Path, index: int, change: Callable[[dict], None]) -> None:
    """Change a process result and write a marker that matches it, as a worker would."""
    path = experiment_dir / f"process_{index}.json"
    data = orjson.loads(path.read_bytes())
    change(data)
    content = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    path.write_bytes(content)
    write_marker(experiment_dir, index, content)


def delete_marker(d: Path) -> None:
    (d / ".completed_1").unlink()


def tamper_marker(d: Path) -> None:
    marker = orjson.loads((d / ".completed_1").read_bytes())
    marker["result_sha256"] = "0" * 64
    (d / ".completed_1").write_bytes(orjson.dumps(marker))


def truncate_result(d: Path) -> None:
    data = (d / "process_1.json").read_bytes()
    (d / "process_1.json").write_bytes(data[: len(data) // 2])


def delete_result(d: Path) -> None:
    (d / "process_1.json").unlink()


def claim_one_gpu_twice(d: Path) -> None:
    def claim(data: dict) -> None:
        data["energy_readings"][0]["devices"] = [
            {"device_id": "GPU-0000", "kind": "gpu", "scope": "device", "energy_j": 1.0}
        ]

    edit_result(d, 0, claim)
    edit_result(d, 1, claim)


def shift_window(d: Path) -> None:
    def shift(data: dict) -> None:
        for edge in (
            "inference_start",
            "inference_end",
            "energy_window_start",
            "energy_window_end",
        ):
            data[f"{edge}_unix_s"] += 1000.0

    edit_result(d, 1, shift)


def forge_negative_energy(d: Path) -> None:
    def forge(data: dict) -> None:
        data["energy_readings"][0]["devices"][0]["energy_j"] = -5000.0

    edit_result(d, 1, forge)


def forge_negative_tokens(d: Path) -> None:
    def forge(data: dict) -> None:
        data["output_tokens"] = -16

    edit_result(d, 1, forge)


def forge_backwards_window(d: Path) -> None:
    def forge(data: dict) -> None:
        data["inference_end_unix_s"] = data["inference_start_unix_s"] - 100.0

    edit_result(d, 1, forge)


def expect_a_million_processes(d: Path) -> None:
    manifest = orjson.loads((d / "experiment.json").read_bytes())
    manifest["expected_num_processes"] = 1_000_000
    (d / "experiment.json").write_bytes(orjson.dumps(manifest))


def expect_five_hundred_processes(d: Path) -> None:
    manifest = orjson.loads((d / "experiment.json").read_bytes())
    manifest["expected_num_processes"] = 500
    (d / "experiment.json").write_bytes(orjson.dumps(manifest))


CASES = {
    "missing marker": (delete_marker, "process 1: no completion marker .completed_1"),
    "tampered marker": (
        tamper_marker,
        "process 1: process_1.json does not match the hash in .completed_1",
    ),
    "truncated result": (truncate_result, "(truncated or changed after it was written)"),
    "missing result": (delete_result, "process_1.json missing although marked complete"),
    "one GPU claimed twice": (claim_one_gpu_twice, "is claimed by processes 0, 1"),
    "windows apart": (shift_window, "energy windows are not one common window: starts"),
    # Values rewritten with a matching marker are still checked on read.
    "negative energy": (forge_negative_energy, "energy_j: Input should be greater than or equal"),
    "negative tokens": (forge_negative_tokens, "output_tokens: Input should be greater than"),
    "window ends before it starts": (forge_backwards_window, "a window ends before it starts"),
    "a million processes": (
        expect_a_million_processes,
        "expected_num_processes: Input should be less than or equal to 100000",
    ),
    "missing ranks as ranges": (
        expect_five_hundred_processes,
        "processes 2-499: no completion marker .completed_<i>",
    ),
}


@pytest.fixture
def damaged_root(two_process_run: MultiProcessRun, tmp_path: Path) -> Path:
    """A results root holding a copy of the two-process experiment (not yet aggregated)."""
    source = two_process_run.experiment_dir
    shutil.copytree(source, tmp_path / "results" / "raw" / source.name)
    return tmp_path / "results"


@pytest.mark.parametrize("case", list(CASES))
def test_damage_is_refused_in_one_line_and_nothing_is_touched(
    case: str, damaged_root: Path, two_process_run: MultiProcessRun
) -> None:
    damage, expected = CASES[case]
    original = snapshot(two_process_run.experiment_dir)
    (experiment_dir,) = (damaged_root / "raw").iterdir()
    damage(experiment_dir)
    before = snapshot(experiment_dir)
    proc = run_llem("aggregate", experiment_dir)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0] and len(lines[0]) < 600, lines[0][:2000]
    assert "Traceback" not in proc.stderr
    assert snapshot(experiment_dir) == before
    assert snapshot(two_process_run.experiment_dir) == original
    assert not (damaged_root / "aggregated").exists()


def test_allow_partial_aggregates_the_complete_process_and_says_so(damaged_root: Path) -> None:
    (experiment_dir,) = (damaged_root / "raw").iterdir()
    delete_marker(experiment_dir)
    proc = run_llem("aggregate", experiment_dir, "--allow-partial")
    assert proc.returncode == 0, proc.stderr
    assert "1 of 2 (partial)" in proc.stdout
    assert "aggregation: process 1: no completion marker .completed_1" in proc.stdout
    result = orjson.loads(
        (damaged_root / "aggregated" / f"{experiment_dir.name}.json").read_bytes()
    )
    info = result["aggregation"]
    assert info["partial"] and info["missing_processes"] == [1] and info["num_processes"] == 1
    part = orjson.loads((experiment_dir / "process_0.json").read_bytes())
    assert result["output_tokens"] == part["output_tokens"]


def test_allow_unverified_keeps_the_sums_flagged(damaged_root: Path) -> None:
    (experiment_dir,) = (damaged_root / "raw").iterdir()
    shift_window(experiment_dir)
    proc = run_llem("aggregate", experiment_dir, "--allow-unverified")
    assert proc.returncode == 0, proc.stderr
    result = orjson.loads(
        (damaged_root / "aggregated" / f"{experiment_dir.name}.json").read_bytes()
    )
    assert result["aggregation"]["temporal_overlap_verified"] is False
    assert result["aggregation"]["num_processes"] == 2
