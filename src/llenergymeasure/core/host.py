"""Which host a process ran on, and how that host's CPU time was spent over a window.

Machine-level energy sources (RAPL, the CPU estimate) see everything the kernel runs,
so processes are grouped by the kernel they ran on (`host_identity`), and a window
records how much of the host's busy CPU time was the measured process's own
(`CpuTimeWindow`): the rest is other work whose energy lands in the reading.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

PROC_ROOT = Path("/proc")
ETC_ROOT = Path("/etc")


def host_identity(proc_root: Path = PROC_ROOT, etc_root: Path = ETC_ROOT) -> str:
    """A name for the machine whose CPU and RAPL counters this process sees.

    The kernel's boot id comes first: containers on one kernel share it, and they share
    the CPU and its counters; two machines never do, whatever their hostnames. Then
    `/etc/machine-id` (stable across reboots, but cloned images can share it), then the
    hostname. The source is the prefix: `boot:<id>`, `machine:<id>` or `hostname:<name>`.

    Args:
        proc_root: where procfs is mounted.
        etc_root: the directory holding `machine-id`.

    """
    boot_id = _read_id(proc_root / "sys" / "kernel" / "random" / "boot_id")
    if boot_id is not None:
        return f"boot:{boot_id}"
    machine_id = _read_id(etc_root / "machine-id")
    if machine_id is not None:
        return f"machine:{machine_id}"
    return f"hostname:{socket.gethostname()}"


def _read_id(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def busy_cpu_s(times: Any) -> float:
    """CPU seconds of work in a `psutil.cpu_times()` record: user + nice + system + irq + softirq.

    Linux already counts guest time inside user (and guest_nice inside nice), so adding
    guest would count a VM's work twice; steal is time the hypervisor gave to another
    guest and iowait is idle, so neither is this host's work.
    """
    fields = ("user", "nice", "system", "irq", "softirq")
    return float(sum(getattr(times, name, 0.0) for name in fields))


def host_busy_cpu_s() -> float:
    """Busy CPU seconds of every core of the host since boot (`/proc/stat` on Linux)."""
    return busy_cpu_s(psutil.cpu_times())


def cpu_model_name(cpuinfo: Path = PROC_ROOT / "cpuinfo") -> str | None:
    """The first `model name` of `/proc/cpuinfo`; None where it has none."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return None


@dataclass(frozen=True)
class CpuTimeFigures:
    """CPU time over one window: this process's own and the whole host's busy time."""

    process_cpu_s: float
    host_busy_cpu_s: float

    @property
    def others_share(self) -> float | None:
        """Share of the host's busy CPU time that was not this process's, in [0, 1].

        None when the host recorded no busy time (nothing to share out).
        """
        if self.host_busy_cpu_s <= 0:
            return None
        return min(1.0, max(0.0, 1.0 - self.process_cpu_s / self.host_busy_cpu_s))


class CpuTimeWindow:
    """Records this process's CPU time against the host's busy CPU time between start and stop.

    The process's time is user + system of all its threads (the backends' threads
    included) and of its engine's helper processes (`add_processes`: vLLM's engine core
    and workers); other child processes (the sampling process) are not counted as its
    own. The host's is
    `host_busy_cpu_s`: in a container that is the whole machine's kernel view.
    """

    def __init__(self) -> None:
        self._processes = [psutil.Process()]
        self._start: CpuTimeFigures | None = None

    def add_processes(self, pids: Sequence[int]) -> None:
        """Count these processes' CPU time as this process's (before `start`)."""
        self._processes += [psutil.Process(pid) for pid in pids]

    def _now(self) -> CpuTimeFigures:
        return CpuTimeFigures(_cpu_s(self._processes), host_busy_cpu_s())

    def start(self) -> None:
        """Open the window."""
        self._start = self._now()

    def stop(self) -> CpuTimeFigures:
        """Close the window and return the CPU time spent in it."""
        if self._start is None:
            raise RuntimeError("CpuTimeWindow.stop() called before start()")
        end, start = self._now(), self._start
        self._start = None
        return CpuTimeFigures(
            process_cpu_s=max(0.0, end.process_cpu_s - start.process_cpu_s),
            host_busy_cpu_s=max(0.0, end.host_busy_cpu_s - start.host_busy_cpu_s),
        )


def _cpu_s(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds of `processes`; one that has ended adds nothing more."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total
