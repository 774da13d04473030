"""The host row's two readings: a process's resident memory and the host's CPU utilisation.

psutil gives both (`Process.memory_info().rss`, `cpu_percent()`), but through enough
Python that each call costs about 200 us on a cold cache, as the sampling process's
cache is after it has slept through 100 ms of inference; one `pread` of a descriptor
kept open costs 30-60 us (docs/performance.md). So on Linux the row is read from /proc
directly, with psutil's arithmetic, and psutil serves where there is no /proc.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Protocol

import psutil

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# The first line of /proc/stat, `cpu` and ten counters of at most 20 digits.
STAT_LINE_BYTES = 512


class HostReader(Protocol):
    """The two readings of the host row."""

    def rss_mb(self) -> float:
        """The process's resident memory now."""
        ...

    def cpu_util_pct(self) -> float:
        """The host's busy share of all its CPUs since the previous call (or creation)."""
        ...


def host_reader(pid: int, proc: Path = Path("/proc")) -> HostReader:
    """A reader for process `pid` and its host: from `proc`, or psutil without it."""
    try:
        return ProcReader(pid, proc)
    except OSError:
        return PsutilReader(pid)


class ProcReader:
    """Reads /proc/PID/statm and /proc/stat through descriptors opened once.

    The descriptors name the process at opening, so a forked sampling process that reads
    them reads the process that created this reader, not itself.
    """

    def __init__(self, pid: int, proc: Path) -> None:
        self._statm = os.open(proc / str(pid) / "statm", os.O_RDONLY)
        weakref.finalize(self, os.close, self._statm)
        self._stat = os.open(proc / "stat", os.O_RDONLY)
        weakref.finalize(self, os.close, self._stat)
        self._last = self._cpu_ticks()

    def rss_mb(self) -> float:
        """The second field of statm (resident pages), as psutil's `rss`."""
        return int(os.pread(self._statm, 128, 0).split()[1]) * PAGE_SIZE / 2**20

    def cpu_util_pct(self) -> float:
        """As psutil's `cpu_percent`: 1 - (idle + iowait) over user to steal."""
        busy, total = self._cpu_ticks()
        last_busy, last_total = self._last
        self._last = busy, total
        if total <= last_total:
            return 0.0
        return min(100.0, max(0.0, 100.0 * (busy - last_busy) / (total - last_total)))

    def _cpu_ticks(self) -> tuple[int, int]:
        """Busy and total clock ticks of all CPUs; guest time is counted in user already."""
        line = os.pread(self._stat, STAT_LINE_BYTES, 0).split(b"\n", 1)[0]
        ticks = [
            int(v) for v in line.split()[1:9]
        ]  # user nice system idle iowait irq softirq steal
        total = sum(ticks)
        return total - ticks[3] - ticks[4], total


class PsutilReader:
    """The readings through psutil, where there is no /proc."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        psutil.cpu_percent(interval=None)  # prime: the first call has no interval

    def rss_mb(self) -> float:
        """The resident memory psutil reads."""
        return self._process.memory_info().rss / 2**20

    def cpu_util_pct(self) -> float:
        """The busy share psutil computes since its previous call in this process."""
        return psutil.cpu_percent(interval=None)
