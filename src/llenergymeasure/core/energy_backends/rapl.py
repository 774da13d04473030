"""CPU package energy from Intel/AMD RAPL counters under `/sys/class/powercap`.

The counters cover the whole machine (every process on it), so this source is
machine-level: aggregation counts it once per host. Each counter wraps at
`max_energy_range_uj`; a poll thread reads it often enough to see every wrap.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement

POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_DIR = re.compile(r"^intel-rapl:\d+$")


@dataclass(frozen=True)
class RaplDomain:
    """One package-level RAPL zone."""

    name: str
    energy_path: Path
    max_range_uj: int


def find_rapl_packages(root: Path = POWERCAP_ROOT) -> list[RaplDomain]:
    """Package zones whose counter this user can read (sub-zones are inside them)."""
    if not root.is_dir():
        return []
    domains = []
    for zone in sorted(root.iterdir()):
        if not _PACKAGE_DIR.match(zone.name):
            continue
        try:
            name = (zone / "name").read_text().strip()
            max_range = int((zone / "max_energy_range_uj").read_text())
            int((zone / "energy_uj").read_text())
        except (OSError, ValueError):
            continue
        domains.append(RaplDomain(name, zone / "energy_uj", max_range))
    return domains


def counter_delta_uj(previous: int, current: int, max_range_uj: int) -> int:
    """Increase of a wrapping counter between two reads (at most one wrap between them)."""
    if current >= previous:
        return current - previous
    return current + max_range_uj - previous


class _Accumulator:
    """Sums the increase of one counter over reads taken at least once per wrap."""

    def __init__(self, domain: RaplDomain) -> None:
        self.domain = domain
        self.total_uj = 0
        self._last = self._read()

    def _read(self) -> int:
        return int(self.domain.energy_path.read_text())

    def update(self) -> None:
        current = self._read()
        self.total_uj += counter_delta_uj(self._last, current, self.domain.max_range_uj)
        self._last = current


class RaplBackend(EnergyBackend):
    """Energy of every CPU package of this host over the window."""

    method = "rapl"

    def __init__(self, root: Path = POWERCAP_ROOT, poll_interval_s: float = 5.0) -> None:
        super().__init__()
        self.domains = find_rapl_packages(root)
        if not self.domains:
            raise OSError(f"no readable RAPL package counter under {root}")
        self.device_ids = [d.name for d in self.domains]
        self.poll_interval_s = poll_interval_s
        self._accumulators: list[_Accumulator] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _begin(self) -> None:
        self._accumulators = [_Accumulator(d) for d in self.domains]
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="llem-rapl-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        cpu_start_s = time.thread_time()
        try:
            while not self._stop.wait(self.poll_interval_s):
                self._update_all()
        finally:
            self.thread_cpu_s = time.thread_time() - cpu_start_s

    def _update_all(self) -> None:
        with self._lock:
            for acc in self._accumulators:
                acc.update()

    def _end(
        self, *, window_start_unix_s: float, window_end_unix_s: float, duration_s: float
    ) -> EnergyMeasurement:
        self._update_all()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        devices = [
            DeviceEnergy(
                device_id=acc.domain.name,
                kind="cpu",
                scope="machine",
                energy_j=acc.total_uj / 1e6,
            )
            for acc in self._accumulators
        ]
        return EnergyMeasurement(
            method="rapl",
            host=self.host,
            devices=devices,
            window_start_unix_s=window_start_unix_s,
            window_end_unix_s=window_end_unix_s,
            duration_s=duration_s,
        )

    def close(self) -> None:
        """Stop the poll thread if a window is still open."""
        self._stop.set()
