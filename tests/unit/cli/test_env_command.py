"""`llem env`: the environment snapshot and the energy sources of this machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakes.nvml import FakeNvml, SimGpu, install
from llenergymeasure.core.energy_inventory import energy_sources

from llem_testing import run_llem

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


def test_llem_env_json_has_the_snapshot_and_the_sources() -> None:
    proc = run_llem("env", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    environment, sources = report["environment"], report["energy_sources"]
    assert environment["python_version"] and environment["summary_line"]
    assert sources["host"]["auto_uses"] in ("rapl", "estimate")
    assert sources["host"]["estimate_full_load_w"] > 0
    assert sources["gpu"]["nvml"] in ("available", "unavailable")


def test_llem_env_text_names_each_source() -> None:
    proc = run_llem("env")
    assert proc.returncode == 0, proc.stderr
    assert "GPU energy: NVML" in proc.stdout
    assert "host energy (auto):" in proc.stdout
    assert "estimate: full-load CPU power" in proc.stdout


def make_zone(root: Path, name: str, label: str) -> None:
    zone = root / name
    zone.mkdir(parents=True)
    (zone / "name").write_text(label + "\n")
    (zone / "energy_uj").write_text("1000\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")


def test_sources_list_each_gpu_method_and_the_rapl_zones(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install(monkeypatch, FakeNvml([SimGpu(A), SimGpu(B, has_energy_counter=False)]))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{A},{B}")
    make_zone(tmp_path, "intel-rapl:0", "package-0")
    make_zone(tmp_path, "intel-rapl:0:0", "dram")
    sources = energy_sources(powercap_root=tmp_path)
    gpu, host = sources["gpu"], sources["host"]
    assert gpu["nvml"] == "available"
    assert [(d["uuid"], d["method"]) for d in gpu["devices"]] == [
        (A, "nvml_counter"),
        (B, "nvml_power_integral"),
    ]
    assert gpu["devices"][1]["energy_scope"] is None
    assert host["auto_uses"] == "rapl"
    assert sorted(z["kind"] for z in host["rapl_zones"]) == ["cpu", "dram"]


def test_without_rapl_the_host_uses_the_estimate(tmp_path: Path) -> None:
    host = energy_sources(cuda_ordinals=[], powercap_root=tmp_path)["host"]
    assert host["auto_uses"] == "estimate" and host["rapl_zones"] == []
    assert host["estimate_source"]
