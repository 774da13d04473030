"""The lines workers print and the launcher reads."""

from __future__ import annotations

from llenergymeasure.orchestration.protocol import (
    ProgressCondenser,
    ProgressUpdate,
    format_progress,
    is_log_line,
    parse_progress,
)


def test_progress_lines_round_trip() -> None:
    line = format_progress(1, "loading model", 0, 1)
    assert line == "[rank 1] loading model 0/1"
    assert parse_progress(line) == ProgressUpdate(1, "loading model", 0, 1)


def test_every_phase_name_of_the_lifecycle_round_trips() -> None:
    for phase in ("baseline", "loading model", "warmup", "thermal_floor", "inference"):
        assert parse_progress(format_progress(0, phase, 3, 9)) == ProgressUpdate(0, phase, 3, 9)
    assert parse_progress("[rank 12] inference 40/40") == ProgressUpdate(12, "inference", 40, 40)


def test_other_lines_are_not_progress() -> None:
    for line in (
        "21:35:09 INFO    [rank 0] 6 prompts on cpu",
        "[rank 1] inference 4 of 6",
        "Traceback (most recent call last):",
        "",
    ):
        assert parse_progress(line) is None
    assert is_log_line("21:35:09 WARNING [rank 1] no energy counter")
    assert not is_log_line("[rank 1] inference 4/6")
    assert not is_log_line("W1122 21:31:42.821000 8762 torch/distributed/elastic/api.py:1028]")


def test_condenser_sums_ranks_and_counts_silent_ranks_as_unfinished() -> None:
    reports: list[tuple[str, int, int]] = []
    condenser = ProgressCondenser(lambda *r: reports.append(r), num_processes=2)
    condenser.update(ProgressUpdate(0, "inference", 0, 6))
    assert reports[-1] == ("inference", 0, 12)
    condenser.update(ProgressUpdate(0, "inference", 6, 6))
    assert reports[-1] == ("inference", 6, 12)
    condenser.update(ProgressUpdate(1, "inference", 2, 5))
    assert reports[-1] == ("inference", 8, 11)
    condenser.update(ProgressUpdate(1, "inference", 5, 5))
    assert reports[-1] == ("inference", 11, 11)
