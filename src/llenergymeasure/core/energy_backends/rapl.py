"""CPU package and DRAM energy from Intel/AMD RAPL counters under `/sys/class/powercap`.

The counters cover the whole machine (every process on it), so this source is
machine-level: aggregation counts it once per host. Each counter wraps at
`max_energy_range_uj`; a poll thread reads it often enough to see every wrap.

Which zones are added (each joule once):
- every package zone (`intel-rapl:N` named `package-N`, one per socket or die), as a
  `cpu` reading;
- every DRAM zone, a sub-zone of a package (`intel-rapl:N:M` named `dram`) or a
  top-level one, as a `dram` reading: DRAM is outside the package;
- not the `core` and `uncore` sub-zones: they are parts of their package;
- not the `psys` (platform) zone: it contains the packages, and adding it counts them
  twice. The result's assumptions say when one was left out.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from llenergymeasure.core.energy_backends.base import EnergyBackend
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement
from llenergymeasure.log import logger

POWERCAP_ROOT = Path("/sys/class/powercap")
_ZONE_DIR = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")
_PACKAGE_PREFIX = "package-"


@dataclass(frozen=True)
class RaplDomain:
    """One RAPL zone whose energy is added: a CPU package or a DRAM zone."""

    name: str
    energy_path: Path
    max_range_uj: int
    kind: Literal["cpu", "dram"] = "cpu"


@dataclass(frozen=True)
class RaplZones:
    """The zones of a powercap tree that are added, and what was left out and why."""

    domains: list[RaplDomain] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def find_rapl_zones(root: Path = POWERCAP_ROOT) -> RaplZones:
    """Package and DRAM zones whose counter this user can read, each joule counted once."""
    if not root.is_dir():
        return RaplZones()
    labels: dict[tuple[str, str | None], str] = {}
    for zone in sorted(root.iterdir()):
        match = _ZONE_DIR.match(zone.name)
        if match is None:
            continue
        try:
            labels[(match[1], match[2])] = (zone / "name").read_text().strip()
        except OSError:
            continue
    zones = RaplZones()
    for (top, sub), label in labels.items():
        parent = None if sub is None else labels.get((top, None), "")
        role = _role(label, parent)
        if role is None:
            zones.left_out.append(_why_left_out(label, parent))
            continue
        dirname = f"intel-rapl:{top}" if sub is None else f"intel-rapl:{top}:{sub}"
        try:
            zones.domains.append(_read_domain(root / dirname, *role))
        except (OSError, ValueError) as e:
            zones.left_out.append(f"{role[0]} not added: unreadable ({type(e).__name__}: {e})")
    return zones


def find_rapl_packages(root: Path = POWERCAP_ROOT) -> list[RaplDomain]:
    """The package (CPU) zones of `find_rapl_zones`."""
    return [d for d in find_rapl_zones(root).domains if d.kind == "cpu"]


def _role(label: str, parent: str | None) -> tuple[str, Literal["cpu", "dram"]] | None:
    """(device id, kind) of a zone whose energy is added; None for a zone left out.

    `parent` is the label of the package a sub-zone belongs to, None for a top-level zone.
    """
    if parent is None and label.startswith(_PACKAGE_PREFIX):
        return label, "cpu"
    if parent is None and label == "dram":
        return "dram", "dram"
    if parent is not None and label == "dram" and parent.startswith(_PACKAGE_PREFIX):
        return f"dram-{parent.removeprefix(_PACKAGE_PREFIX)}", "dram"
    return None


def _why_left_out(label: str, parent: str | None) -> str:
    if parent is not None:
        return f"{label} sub-zone of {parent or 'an unnamed zone'} not added: part of its package"
    if label == "psys":
        return "psys (platform) zone not added: it contains the CPU packages"
    return f"top-level zone {label!r} not added: unknown what it covers"


def _read_domain(zone: Path, name: str, kind: Literal["cpu", "dram"]) -> RaplDomain:
    max_range = int((zone / "max_energy_range_uj").read_text())
    int((zone / "energy_uj").read_text())
    return RaplDomain(name, zone / "energy_uj", max_range, kind)


def counter_delta_uj(previous: int, current: int, max_range_uj: int) -> int:
    """Increase of a wrapping counter between two reads (at most one wrap between them)."""
    if current >= previous:
        return current - previous
    return current + max_range_uj - previous


class _Accumulator:
    """Sums the increase of one counter over reads taken at least once per wrap.

    A failed read ends the accumulation: a missed wrap cannot be ruled out after it,
    so the domain's energy for the window is unknown (`error` says why).
    """

    def __init__(self, domain: RaplDomain) -> None:
        self.domain = domain
        self.total_uj = 0
        self.error: str | None = None
        self._last = self._read()

    def _read(self) -> int | None:
        try:
            return int(self.domain.energy_path.read_text())
        except (OSError, ValueError) as e:
            self.error = f"{type(e).__name__}: {e}"
            logger.warning(
                "RAPL {} counter read failed ({}); its energy for this window is null",
                self.domain.name,
                self.error,
            )
            return None

    def update(self) -> None:
        if self.error is not None or self._last is None:
            return
        current = self._read()
        if current is None:
            return
        self.total_uj += counter_delta_uj(self._last, current, self.domain.max_range_uj)
        self._last = current

    @property
    def energy_j(self) -> float | None:
        return None if self.error is not None else self.total_uj / 1e6


class RaplBackend(EnergyBackend):
    """Energy of every CPU package and DRAM zone of this host over the window."""

    method = "rapl"

    def __init__(self, root: Path = POWERCAP_ROOT, poll_interval_s: float = 5.0) -> None:
        super().__init__()
        zones = find_rapl_zones(root)
        if not any(d.kind == "cpu" for d in zones.domains):
            raise OSError(f"no readable RAPL package counter under {root}")
        self.domains = zones.domains
        self.assumptions = zones.left_out
        self.device_ids = [d.name for d in self.domains]
        self.poll_interval_s = poll_interval_s
        self._accumulators: list[_Accumulator] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def components(self) -> list[str]:
        """CPU packages, and DRAM where the platform has a DRAM zone."""
        return list(dict.fromkeys(d.kind for d in self.domains))

    @property
    def errors(self) -> dict[str, str]:
        """Counters that failed in the current or last window, by device id (energy null)."""
        return {a.domain.name: a.error for a in self._accumulators if a.error is not None}

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
                kind=acc.domain.kind,
                scope="machine",
                energy_j=acc.energy_j,
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
            assumptions=self.assumptions,
        )

    def close(self) -> None:
        """Stop the poll thread if a window is still open."""
        self._stop.set()
