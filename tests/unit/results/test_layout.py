from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import orjson
import pytest

from llenergymeasure.domain.metrics import LatencyStats
from llenergymeasure.errors import ResultsError
from llenergymeasure.fileio import atomic_write_bytes
from llenergymeasure.results.layout import (
    ResultsLayout,
    read_model,
    validate_experiment_id,
    write_marker,
    write_model,
)


@pytest.mark.parametrize("bad", ["../x", "/abs", "a/b", "", ".hidden", "a..b", "x" * 200])
def test_ids_that_could_escape_are_refused(bad: str) -> None:
    with pytest.raises(ResultsError):
        validate_experiment_id(bad)


def test_symlinked_experiment_dir_pointing_out_is_refused(tmp_path: Path) -> None:
    layout = ResultsLayout(tmp_path / "results")
    layout.raw_root.mkdir(parents=True)
    (layout.raw_root / "evil").symlink_to(tmp_path)
    with pytest.raises(ResultsError, match="outside"):
        layout.experiment_dir("evil")


def test_atomic_write_replaces_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["f.json"]


def test_failed_write_keeps_previous_file(tmp_path: Path) -> None:
    from llenergymeasure.fileio import atomic_target

    target = tmp_path / "f.json"
    atomic_write_bytes(target, b"previous")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["f.json"]


def test_nan_is_written_as_null(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    write_model(path, LatencyStats(ttft_mean_ms=math.nan, ttft_p50_ms=1.5))
    data = orjson.loads(path.read_bytes())
    assert data["ttft_mean_ms"] is None and data["ttft_p50_ms"] == 1.5


def test_marker_holds_the_hash_of_the_result(tmp_path: Path) -> None:
    data = write_model(tmp_path / "process_0.json", LatencyStats())
    marker = orjson.loads(write_marker(tmp_path, 0, data).read_bytes())
    assert marker["process_index"] == 0
    assert (
        marker["result_sha256"]
        == hashlib.sha256((tmp_path / "process_0.json").read_bytes()).hexdigest()
    )


def test_reader_errors_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(b'{"schema_version": 1, "ttft')
    with pytest.raises(ResultsError, match="truncated or corrupted"):
        read_model(path, LatencyStats)
    path.write_bytes(b'{"schema_version": 99}')
    with pytest.raises(ResultsError, match="schema_version 99 is newer"):
        read_model(path, LatencyStats)
    with pytest.raises(ResultsError, match="not found"):
        read_model(tmp_path / "missing.json", LatencyStats)
