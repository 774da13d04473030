"""The sampling process fails into a warning, never a hang, and never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.power_thermal import CpuSampleSource
from llenergymeasure.core.sampler_process import ERROR_KEY, ProcessSampler
from llenergymeasure.core.window import MeasurementWindow
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX

from llem_testing import REPO, process_gone

# A parent that starts a sampler, prints the child's pid, then is killed outright.
PARENT = """
import os, signal, sys, time
from llenergymeasure.core.power_thermal import CpuSampleSource
from llenergymeasure.core.sampler_process import ProcessSampler
sampler = ProcessSampler([CpuSampleSource(min_interval_s=0)], 10)
sampler.start()
print(sampler.pid, flush=True)
time.sleep(0.2)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_host_row_is_sampled_in_the_child_at_the_interval() -> None:
    sampler = ProcessSampler([CpuSampleSource(min_interval_s=0)], 20)
    assert sampler.pid != os.getpid()
    sampler.start()
    time.sleep(0.5)
    samples = sampler.stop()
    assert 20 <= len(samples) <= 30
    assert all(s.device_index == CPU_DEVICE_INDEX and s.memory_used_mb > 0 for s in samples)
    assert sampler.cpu_s > 0 and sampler.errors == {}
    assert sampler.alive  # stopped, the child waits for the next window
    sampler.close()
    assert process_gone(sampler.pid, within_s=1.0)


def test_one_child_serves_successive_windows_each_with_its_own_samples() -> None:
    sampler = ProcessSampler([CpuSampleSource(min_interval_s=0)], 10)
    windows = []
    for _ in range(2):
        start_s = time.monotonic()
        sampler.start()
        time.sleep(0.2)
        samples = sampler.stop()
        windows.append((start_s, time.monotonic(), samples))
        time.sleep(0.1)  # between windows the child takes no sample
    for start_s, end_s, samples in windows:
        assert len(samples) >= 10
        assert all(start_s <= s.t_s <= end_s for s in samples)
    assert sampler.alive and sampler.errors == {}
    sampler.close()
    assert process_gone(sampler.pid, within_s=1.0)


def test_a_window_of_its_own_ends_its_child_a_lent_one_keeps_it() -> None:
    own = MeasurementWindow([], [CpuSampleSource(min_interval_s=0)], 10)
    own.run(lambda: time.sleep(0.05))
    assert process_gone(own.sampler.pid, within_s=1.0)
    lent = ProcessSampler([CpuSampleSource(min_interval_s=0)], 10)
    for _ in range(2):
        result = MeasurementWindow([], lent.sources, 10, sampler=lent).run(lambda: None)
        assert result.samples and result.sampler_errors == {}
    assert lent.alive
    lent.close()
    assert process_gone(lent.pid, within_s=1.0)


def test_a_child_killed_between_windows_fails_the_next_start_without_a_hang() -> None:
    sampler = ProcessSampler([CpuSampleSource(min_interval_s=0)], 10)
    sampler.start()
    assert sampler.stop()
    os.kill(sampler.pid, signal.SIGKILL)
    assert process_gone(sampler.pid, within_s=1.0) and not sampler.alive
    started_s = time.monotonic()
    sampler.start()
    assert sampler.stop() == []
    assert time.monotonic() - started_s < 3.0
    assert "samples lost" in sampler.errors[ERROR_KEY]


def test_a_killed_sampling_process_is_a_sampler_error_not_a_hang() -> None:
    window = MeasurementWindow([CpuEstimateBackend(None)], [CpuSampleSource(min_interval_s=0)], 10)
    window.begin()
    os.kill(window.sampler.pid, signal.SIGKILL)
    started_s = time.monotonic()
    result = window.end(None)
    assert time.monotonic() - started_s < 1.0
    assert result.samples == []
    assert "samples lost" in result.sampler_errors[ERROR_KEY]
    (reading,) = result.readings  # the energy backends are unaffected
    assert reading.method == "estimate" and reading.total_j is not None


def test_a_body_that_raises_ends_the_sampling_process() -> None:
    window = MeasurementWindow([], [CpuSampleSource(min_interval_s=0)], 10)

    def body() -> None:
        raise RuntimeError("the model ran out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        window.run(body)
    assert process_gone(window.sampler.pid, within_s=1.0)


def test_the_sampling_process_dies_with_its_parent() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    parent = subprocess.run(
        [sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=60, env=env
    )
    assert parent.returncode == -signal.SIGKILL, parent.stderr[-2000:]
    child_pid = int(parent.stdout.split()[0])
    assert process_gone(child_pid, within_s=2.0)


def test_samples_are_read_from_the_child_while_it_samples() -> None:
    """What live telemetry reads once a second: the new samples, none twice, none lost."""
    window = MeasurementWindow([], [CpuSampleSource(min_interval_s=0)], 10)
    assert window.samples_since(0) == []  # not open yet
    window.begin()
    time.sleep(0.2)
    first = window.samples_since(0)
    time.sleep(0.2)
    second = window.samples_since(len(first))
    result = window.end(None)
    assert len(first) >= 10 and len(second) >= 10
    assert first + second == result.samples[: len(first) + len(second)]
    assert window.samples_since(len(result.samples) - 1) == result.samples[-1:]
    assert result.sampler_errors == {}
