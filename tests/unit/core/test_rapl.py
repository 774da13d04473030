"""RAPL against a powercap tree laid out as the kernel does (files under a tmp root)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from llenergymeasure.core.energy_backends.rapl import (
    RaplBackend,
    counter_delta_uj,
    find_rapl_packages,
)
from llenergymeasure.core.measurement_warnings import collect_measurement_warnings
from llenergymeasure.domain.metrics import DeviceEnergy, EnergyMeasurement


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


def write_uj(zone: Path, energy_uj: int | str) -> None:
    (zone / "energy_uj").write_text(f"{energy_uj}\n")


def by_id(measurement: EnergyMeasurement) -> dict[str, DeviceEnergy]:
    return {d.device_id: d for d in measurement.devices}


def test_psys_contains_the_package_and_is_not_added(tmp_path: Path) -> None:
    package = make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 10**12)
    psys = make_zone(tmp_path, "intel-rapl:1", "psys", 0, 10**12)
    backend = RaplBackend(tmp_path, poll_interval_s=3600)
    backend.start()
    write_uj(package, 10_000_000)
    write_uj(psys, 15_000_000)
    measurement = backend.stop()
    assert measurement.total_j == pytest.approx(10.0)
    assert list(by_id(measurement)) == ["package-0"]
    assert any("psys" in a for a in measurement.assumptions)


def test_two_sockets_and_their_dram_each_counted_once(tmp_path: Path) -> None:
    zones = {
        "intel-rapl:0": make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 10**12),
        "intel-rapl:0:0": make_zone(tmp_path, "intel-rapl:0:0", "core", 0, 10**12),
        "intel-rapl:0:2": make_zone(tmp_path, "intel-rapl:0:2", "dram", 0, 10**12),
        "intel-rapl:1": make_zone(tmp_path, "intel-rapl:1", "package-1", 0, 10**12),
        "intel-rapl:1:0": make_zone(tmp_path, "intel-rapl:1:0", "dram", 0, 10**12),
    }
    backend = RaplBackend(tmp_path, poll_interval_s=3600)
    backend.start()
    for joules, zone in zip((30, 20, 4, 40, 5), zones.values(), strict=True):
        write_uj(zone, joules * 1_000_000)
    measurement = backend.stop()
    devices = by_id(measurement)
    assert {k: (d.kind, d.energy_j) for k, d in devices.items()} == {
        "package-0": ("cpu", 30.0),
        "dram-0": ("dram", 4.0),
        "package-1": ("cpu", 40.0),
        "dram-1": ("dram", 5.0),
    }
    assert measurement.total_j == pytest.approx(79.0)
    assert any("core" in a for a in measurement.assumptions)


def test_top_level_dram_zone_is_its_own_component(tmp_path: Path) -> None:
    package = make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 10**12)
    dram = make_zone(tmp_path, "intel-rapl:1", "dram", 0, 10**12)
    backend = RaplBackend(tmp_path, poll_interval_s=3600)
    backend.start()
    write_uj(package, 7_000_000)
    write_uj(dram, 2_000_000)
    devices = by_id(backend.stop())
    assert (devices["dram"].kind, devices["dram"].energy_j) == ("dram", 2.0)
    assert (devices["package-0"].kind, devices["package-0"].energy_j) == ("cpu", 7.0)


def test_read_error_in_the_poll_thread_nulls_that_zone_only(tmp_path: Path) -> None:
    package = make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 10**12)
    dram = make_zone(tmp_path, "intel-rapl:0:2", "dram", 0, 10**12)
    backend = RaplBackend(tmp_path, poll_interval_s=0.01)
    backend.start()
    write_uj(dram, "")  # a read that fails mid-window (ValueError), then recovers
    deadline = time.monotonic() + 5
    while "dram-0" not in backend.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    write_uj(dram, 3_000_000)
    write_uj(package, 6_000_000)
    measurement = backend.stop()
    devices = by_id(measurement)
    assert devices["dram-0"].energy_j is None
    assert devices["package-0"].energy_j == pytest.approx(6.0)
    assert "ValueError" in backend.errors["dram-0"]
    assert measurement.total_j is None


def test_read_error_at_the_window_end_completes_with_a_warning(tmp_path: Path) -> None:
    package = make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 10**12)
    backend = RaplBackend(tmp_path, poll_interval_s=3600)
    backend.start()
    (package / "energy_uj").unlink()
    (package / "energy_uj").mkdir()  # reading it raises IsADirectoryError (an OSError)
    measurement = backend.stop()
    assert by_id(measurement)["package-0"].energy_j is None
    assert "IsADirectoryError" in backend.errors["package-0"]
    warnings = collect_measurement_warnings(
        duration_s=60,
        power_readings={},
        readings=[measurement],
        energy_requested=True,
        has_gpu=False,
    )
    assert "energy_incomplete" in {w.code for w in warnings}


def test_an_unreadable_zone_is_named_in_the_assumptions(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0, 10**12)
    dram = make_zone(tmp_path, "intel-rapl:0:2", "dram", 0, 10**12)
    (dram / "energy_uj").unlink()
    backend = RaplBackend(tmp_path, poll_interval_s=3600)
    assert backend.device_ids == ["package-0"]
    assert any(a.startswith("dram-0 not added: unreadable") for a in backend.assumptions)
