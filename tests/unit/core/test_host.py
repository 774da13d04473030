"""Host identity and CPU-time accounting, read from real files and real processes."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from llenergymeasure.core.host import (
    CpuTimeFigures,
    CpuTimeWindow,
    cpu_model_name,
    host_busy_cpu_s,
    host_identity,
)
from llenergymeasure.core.measurement_warnings import host_contention_warning

# /proc/stat's first line in USER_HZ ticks: user nice system idle iowait irq softirq
# steal guest guest_nice. Guest (30) is inside user (100), guest_nice (5) inside nice.
FAKE_STAT = "cpu  100 10 20 500 7 1 2 50 30 5\ncpu0 100 10 20 500 7 1 2 50 30 5\n"


def test_busy_time_counts_guest_once_and_not_steal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "stat").write_text(FAKE_STAT)
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(tmp_path))
    ticks_per_s = 100  # USER_HZ on Linux
    assert host_busy_cpu_s() == pytest.approx((100 + 10 + 20 + 1 + 2) / ticks_per_s)


def test_host_identity_prefers_the_boot_id(tmp_path: Path) -> None:
    proc, etc = tmp_path / "proc", tmp_path / "etc"
    (proc / "sys" / "kernel" / "random").mkdir(parents=True)
    etc.mkdir()
    (etc / "machine-id").write_text("0123abcd\n")
    assert host_identity(proc, etc) == "machine:0123abcd"
    (proc / "sys" / "kernel" / "random" / "boot_id").write_text("5e1f-77\n")
    assert host_identity(proc, etc) == "boot:5e1f-77"


def test_host_identity_falls_back_to_the_hostname(tmp_path: Path) -> None:
    (tmp_path / "machine-id").write_text("\n")
    assert host_identity(tmp_path, tmp_path).startswith("hostname:")


def test_cpu_model_name_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\n")
    assert cpu_model_name(cpuinfo) == "AMD EPYC 9654 96-Core Processor"
    assert cpu_model_name(tmp_path / "absent") is None


def test_another_process_burning_a_core_is_others_work() -> None:
    window = CpuTimeWindow()
    window.start()
    burn = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    figures = window.stop()
    assert figures.host_busy_cpu_s >= 0.9
    assert figures.process_cpu_s < 0.3
    assert figures.others_share is not None and figures.others_share > 0.6
    warning = host_contention_warning(figures.process_cpu_s, figures.host_busy_cpu_s)
    assert warning is not None and warning.code == "host_contention"


def test_others_share_is_clipped_and_unknown_without_busy_time() -> None:
    assert CpuTimeFigures(process_cpu_s=2.0, host_busy_cpu_s=1.5).others_share == 0.0
    assert CpuTimeFigures(process_cpu_s=1.0, host_busy_cpu_s=4.0).others_share == 0.75
    assert CpuTimeFigures(process_cpu_s=0.0, host_busy_cpu_s=0.0).others_share is None


def test_the_cpu_time_of_the_engines_processes_is_the_runs() -> None:
    # vLLM's engine core and workers: processes the engine names as its helpers.
    burn = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass"
    helper = subprocess.Popen([sys.executable, "-c", burn + "\ntime.sleep(60)"])
    try:
        with_helper, alone = CpuTimeWindow(), CpuTimeWindow()
        with_helper.add_processes([helper.pid])
        with_helper.start()
        alone.start()
        burned_s = 0.0
        while burned_s < 0.5:
            time.sleep(0.05)
            times = psutil.Process(helper.pid).cpu_times()
            burned_s = times.user + times.system
        counted, not_counted = with_helper.stop(), alone.stop()
    finally:
        helper.kill()
        helper.wait()
    assert counted.process_cpu_s - not_counted.process_cpu_s >= 0.4
