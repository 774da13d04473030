"""RAPL against a powercap tree laid out as the kernel does (files under a tmp root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.core.energy_backends.rapl import (
    RaplBackend,
    counter_delta_uj,
    find_rapl_packages,
)


def make_zone(root: Path, name: str, label: str, energy_uj: int, max_uj: int) -> Path:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text(f"{energy_uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return zone


def test_counter_delta_handles_wraparound() -> None:
    assert counter_delta_uj(100, 250, 1000) == 150
    assert counter_delta_uj(900, 50, 1000) == 150


def test_only_package_zones_are_used(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 5, 1000)
    make_zone(tmp_path, "intel-rapl:0:0", "core", 5, 1000)
    make_zone(tmp_path, "intel-rapl:1", "package-1", 5, 1000)
    assert [d.name for d in find_rapl_packages(tmp_path)] == ["package-0", "package-1"]


def test_window_energy_across_a_wrap(tmp_path: Path) -> None:
    zone = make_zone(tmp_path, "intel-rapl:0", "package-0", 999_000_000, 1_000_000_000)
    backend = RaplBackend(tmp_path, poll_interval_s=3600)
    backend.start()
    (zone / "energy_uj").write_text("2500000\n")  # wrapped: 1 J before the wrap + 2.5 J after
    measurement = backend.stop()
    assert measurement.method == "rapl"
    assert measurement.devices[0].scope == "machine"
    assert measurement.total_j == pytest.approx(3.5)


def test_no_readable_counter_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="no readable RAPL"):
        RaplBackend(tmp_path)
