"""What workers print and the launcher reads: the one interface between the two.

A worker prints each progress update as one line on stdout,
`[rank <i>] <phase> <done>/<total>` (e.g. `[rank 1] inference 12/40`), and its log
lines on stderr as `HH:MM:SS LEVEL   [rank <i>] message`. Started with `--telemetry`
(`llem run --metrics-port`), it also prints the energy window's live figures about once
a second as `[rank <i>] telemetry <JSON object>` (`core/live_telemetry.py`). The launcher
reads both streams merged: progress lines feed one bar per phase (summed over ranks),
telemetry lines the metrics server, log lines are shown as they are, and anything else
(a traceback, a message of `accelerate` or `torch.distributed`) is kept for the failure
report.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

import orjson

from llenergymeasure.core.live_telemetry import DeviceTelemetry, Telemetry, TelemetryFn

ProgressFn = Callable[[str, int, int], None]

_PROGRESS_LINE = re.compile(
    r"^\[rank (?P<rank>\d+)\] (?P<phase>[a-z][a-z _]*?) (?P<done>\d+)/(?P<total>\d+)$"
)
_TELEMETRY_LINE = re.compile(r"^\[rank (?P<rank>\d+)\] telemetry (?P<data>\{.*\})$")
# Progress (the main thread) and telemetry (its own thread) share stdout, a line at a time.
_STDOUT_LOCK = threading.Lock()
_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (TRACE|DEBUG|INFO|SUCCESS|WARNING|ERROR|CRITICAL)\s")


@dataclass(frozen=True)
class ProgressUpdate:
    """One rank's position in one phase of the lifecycle."""

    rank: int
    phase: str
    done: int
    total: int


def format_progress(rank: int, phase: str, done: int, total: int) -> str:
    """The progress line a worker prints."""
    return f"[rank {rank}] {phase} {done}/{total}"


def parse_progress(line: str) -> ProgressUpdate | None:
    """The update a progress line carries; None for any other line."""
    match = _PROGRESS_LINE.match(line)
    if match is None:
        return None
    return ProgressUpdate(
        int(match["rank"]), match["phase"], int(match["done"]), int(match["total"])
    )


@dataclass(frozen=True)
class TelemetryUpdate:
    """One rank's live figures."""

    rank: int
    telemetry: Telemetry


def format_telemetry(rank: int, telemetry: Telemetry) -> str:
    """The telemetry line a worker prints: one line, its figures as a JSON object."""
    return f"[rank {rank}] telemetry {orjson.dumps(asdict(telemetry)).decode()}"


def parse_telemetry(line: str) -> TelemetryUpdate | None:
    """The update a telemetry line carries; None for any other line, or a garbled one."""
    match = _TELEMETRY_LINE.match(line)
    if match is None:
        return None
    try:
        data = orjson.loads(match["data"])
        devices = tuple(DeviceTelemetry(**device) for device in data.pop("devices"))
        telemetry = Telemetry(**data, devices=devices)
    except (orjson.JSONDecodeError, TypeError, KeyError, AttributeError):
        return None
    return TelemetryUpdate(int(match["rank"]), telemetry)


def progress_printer(rank: int) -> ProgressFn:
    """Progress as single lines on stdout, read by the launcher (see `protocol`).

    Each line goes out in one write: the ranks share the launcher's pipe, and `print`
    writes the text and its newline separately, so another rank's line could land in
    between and garble both.
    """

    def report(phase: str, done: int, total: int) -> None:
        _write_line(format_progress(rank, phase, done, total))

    return report


def telemetry_printer(rank: int) -> TelemetryFn:
    """Live figures as single lines on stdout, read by the launcher (see `protocol`)."""

    def report(telemetry: Telemetry) -> None:
        _write_line(format_telemetry(rank, telemetry))

    return report


def _write_line(line: str) -> None:
    with _STDOUT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def worker_log_format(rank: int) -> str:
    """The loguru format of a worker's log lines: time, level, rank, message."""
    return f"{{time:HH:mm:ss}} {{level: <7}} [rank {rank}] {{message}}"


def is_log_line(line: str) -> bool:
    """True for a line written in `worker_log_format`."""
    return _LOG_LINE.match(line) is not None


class ProgressCondenser:
    """One bar per phase for the whole experiment: the ranks' counts summed.

    A rank that has not yet reported a phase counts as the largest total reported so
    far, so a bar does not look finished while a rank is still to start it.
    """

    def __init__(self, report: ProgressFn, num_processes: int) -> None:
        self.report = report
        self.num_processes = num_processes
        self._phases: dict[str, dict[int, tuple[int, int]]] = {}

    def update(self, update: ProgressUpdate) -> None:
        """Record one rank's update and report the phase's sums."""
        ranks = self._phases.setdefault(update.phase, {})
        ranks[update.rank] = (update.done, update.total)
        done = sum(d for d, _ in ranks.values())
        total = sum(t for _, t in ranks.values())
        missing = max(0, self.num_processes - len(ranks))
        total += missing * max(t for _, t in ranks.values())
        self.report(update.phase, done, total)
