"""Trace files are read back as arrival times; every malformed line is named by file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config.load import LoadConfig
from llenergymeasure.core.load.arrivals import load_schedule_s
from llenergymeasure.core.load.trace import read_trace
from llenergymeasure.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "arrivals.jsonl"
    path.write_text(text, encoding="utf-8")
    return path


def test_arrivals_read_back_in_order_skipping_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path, '{"arrival_s": 0}\n\n{"arrival_s": 0.25}\n{"arrival_s": 0.25}\n{"arrival_s": 3}\n'
    )
    assert read_trace(path) == [0.0, 0.25, 0.25, 3.0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"arrival_s": 0.1}\n{"arrival_s": 0.2\n', ":2: invalid JSON"),
        ('{"arrival_s": 0.1}\n[0.2]\n', ':2: expected an object like {"arrival_s": 0.25}'),
        ('{"t": 0.1}\n', ':1: expected an object like {"arrival_s": 0.25}'),
        ('{"arrival_s": 0.1, "prompt": "x"}\n', ":1: unknown key 'prompt'"),
        ('{"arrival_s": "0.1"}\n', ":1: arrival_s must be a finite number of seconds"),
        ('{"arrival_s": true}\n', ":1: arrival_s must be a finite number of seconds"),
        ('{"arrival_s": NaN}\n', ":1: arrival_s must be a finite number of seconds"),
        ('{"arrival_s": Infinity}\n', ":1: arrival_s must be a finite number of seconds"),
        ('{"arrival_s": -0.5}\n', ":1: arrival_s is negative (-0.5)"),
        ('{"arrival_s": 1}\n\n{"arrival_s": 0.5}\n', ":3: arrival_s 0.5 comes before the previous"),
        ("\n\n", ": holds no arrivals"),
    ],
)
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        read_trace(path)
    assert str(err.value).startswith(f"load.trace: {path}")
    assert f"{path}{expected}" in str(err.value)


def test_missing_and_undecodable_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trace file not found"):
        read_trace(tmp_path / "absent.jsonl")
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"arrival_s": 0}\n\xff\n')
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_trace(path)


def test_a_trace_load_replays_only_the_arrivals_before_its_duration(tmp_path: Path) -> None:
    path = write(tmp_path, "".join(f'{{"arrival_s": {t}}}\n' for t in (0, 0.5, 1.0, 1.5)))
    load = LoadConfig(mode="trace", trace=path, duration_s=1.0)
    assert load_schedule_s(load, seed=0) == [0.0, 0.5]
    with pytest.raises(ConfigError, match="load.duration_s: no arrival"):
        load_schedule_s(
            LoadConfig(mode="trace", trace=write(tmp_path, '{"arrival_s": 5}\n'), duration_s=1.0),
            seed=0,
        )
