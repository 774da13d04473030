"""EnergyMonitor and llem.measure on the simulated NVML: exact joules per window."""

from __future__ import annotations

import gc
import os
import signal
import time

import pytest

import llenergymeasure as llem
from fakes.nvml import FakeNvml, ManualClock, SimGpu, Steps, install
from llenergymeasure.domain import metrics as reason_bits
from llenergymeasure.errors import ConfigError

from llem_testing import live_children, process_gone

A, B = "GPU-aaaaaaaa-0000", "GPU-bbbbbbbb-1111"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> FakeNvml:
    """GPU A: 100 W until 2 s, then 300 W; GPU B: 50 W throughout."""
    gpus = [
        SimGpu(A, power_w=Steps([(0.0, 100.0), (2.0, 300.0)])),
        SimGpu(B, power_w=Steps.constant(50.0)),
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", f"{A},{B}")
    return install(monkeypatch, FakeNvml(gpus, clock=clock.monotonic))


def gpu_joules(measurement: llem.Measurement) -> float | None:
    (gpu,) = [c for c in measurement.components if c.component == "gpu"]
    assert gpu.method == "nvml_counter"
    return gpu.energy_j


def test_nested_and_overlapping_windows_each_get_their_own_joules(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    monitor = llem.EnergyMonitor(devices=[0])
    monitor.begin_window("outer")  # t = 0
    clock.advance(1.0)
    monitor.begin_window("inner")  # t = 1
    clock.advance(2.0)
    monitor.begin_window("overlap")  # t = 3
    clock.advance(1.0)
    inner = monitor.end_window("inner")  # t = 4
    clock.advance(1.0)
    outer = monitor.end_window("outer")  # t = 5
    clock.advance(1.0)
    overlap = monitor.end_window("overlap")  # t = 6
    assert gpu_joules(inner) == 100.0 * 1 + 300.0 * 2
    assert gpu_joules(outer) == 100.0 * 2 + 300.0 * 3
    assert gpu_joules(overlap) == 300.0 * 3
    assert (inner.name, outer.name, overlap.name) == ("inner", "outer", "overlap")
    assert inner.boundary == "gpu" and inner.energy_j == 700.0
    assert inner.above_idle_j is None  # no baseline asked for


def test_a_window_covers_every_device_given(two_gpus: FakeNvml, clock: ManualClock) -> None:
    monitor = llem.EnergyMonitor(devices=["cuda:0", 1])
    monitor.begin_window("both")
    clock.advance(3.0)
    both = monitor.end_window("both")
    (gpu,) = [c for c in both.components if c.component == "gpu"]
    assert gpu.device_ids == [A, B]
    assert gpu.energy_j == 100.0 * 2 + 300.0 * 1 + 50.0 * 3


def test_measure_on_gpus_says_it_could_not_synchronise(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    with llem.measure(devices=[1]) as measured:
        assert not measured.done
        clock.advance(2.0)
    assert measured.done
    assert gpu_joules(measured) == 100.0
    assert measured.methods["gpu"] == "nvml_counter"
    assert "devices_not_synchronised" in [w.code for w in measured.warnings]
    assert any(s.power_w is not None for s in measured.samples)  # GPU rows sampled


def test_measure_reports_throttling_resource_use_and_persistence_as_a_run_does(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    """The window's samples give throttling and resource use; the GPU's state its checks."""
    gpu = SimGpu(
        A,
        persistence_mode=False,
        clock_event_reasons=Steps.constant(reason_bits.SW_THERMAL),
        sm_utilisation_pct=Steps.constant(80.0),
        memory_used_mb=Steps.constant(4096.0),
        temperature_c=Steps.constant(83.0),
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", A)
    install(monkeypatch, FakeNvml([gpu], clock=clock.monotonic))
    with llem.measure(devices=[0], sample_interval_ms=10) as measured:
        time.sleep(0.2)  # real time: the sampling process ticks on the monotonic clock
        clock.advance(1.0)
    assert "persistence_mode_off" in [w.code for w in measured.warnings]
    throttle = measured.thermal_throttle
    assert throttle is not None and throttle.thermal and throttle.sw_thermal
    assert not throttle.power and throttle.max_temperature_c == 83.0
    assert throttle.thermal_duration_s is not None and throttle.thermal_duration_s >= 0.05
    extended = measured.extended
    assert extended is not None
    assert extended.gpu_util_mean_pct == 80.0 and extended.gpu_mem_peak_mb == 4096.0
    assert extended.process_rss_peak_mb is not None and extended.process_rss_peak_mb > 0


def test_a_failure_at_the_first_window_does_not_turn_the_gpu_checks_off(
    monkeypatch: pytest.MonkeyPatch, clock: ManualClock
) -> None:
    fake = install(
        monkeypatch, FakeNvml([SimGpu(A, persistence_mode=False)], clock=clock.monotonic)
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", A)
    monitor = llem.EnergyMonitor(devices=[0])
    fake.fail("*", start_s=fake.now_s(), end_s=fake.now_s() + 0.5)  # NVML down a moment
    monitor.begin_window("first")  # opens no GPU: its energy is null, with a reason
    clock.advance(1.0)
    first = monitor.end_window("first")
    monitor.begin_window("second")
    clock.advance(1.0)
    second = monitor.end_window("second")
    assert "gpu_energy_unavailable" in [w.code for w in first.warnings]
    assert second.methods.get("gpu") == "nvml_counter"
    assert "persistence_mode_off" in [w.code for w in second.warnings]


def test_window_names_are_checked(two_gpus: FakeNvml) -> None:
    monitor = llem.EnergyMonitor(devices=[0])
    monitor.begin_window("x")
    with pytest.raises(ValueError, match="already open"):
        monitor.begin_window("x")
    monitor.end_window("x")
    with pytest.raises(ValueError, match="no measurement window 'x'"):
        monitor.end_window("x")


def test_arguments_are_checked_before_measuring() -> None:
    for device in ("gpu0", "cuda:\u00b2", "\u0663", " 3", "cuda", -1, True):
        with pytest.raises(ConfigError, match="is not a CUDA ordinal"):
            llem.measure(devices=[device])
    with pytest.raises(ConfigError, match="sample_interval_ms"):
        llem.EnergyMonitor(sample_interval_ms=0)


def test_a_measure_objects_windows_share_one_child_and_keep_their_own_samples(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    before = live_children()
    m = llem.measure(devices=[0], sample_interval_ms=10)
    (child,) = live_children() - before  # forked once, with the object
    windows = []
    for advance_s in (1.0, 2.0):  # t = 0..1, then t = 1..3
        start_s = time.monotonic()
        with m as measured:
            time.sleep(0.1)
            assert live_children() - before == {child}  # no fork for this window
            clock.advance(advance_s)
        windows.append((start_s, time.monotonic(), measured))
    (first_start_s, first_end_s, first), (second_start_s, second_end_s, second) = windows
    assert gpu_joules(first) == 100.0 * 1
    assert gpu_joules(second) == 100.0 * 1 + 300.0 * 1
    for start_s, end_s, measured in windows:
        assert len(measured.samples) >= 5 + 2  # ~10 GPU ticks; the host row first and last
        assert all(start_s <= s.t_s <= end_s for s in measured.samples)
        assert "sampler_error" not in [w.code for w in measured.warnings]
    del m, measured
    gc.collect()
    assert process_gone(child, within_s=2.0)


def test_a_nested_window_of_the_same_object_forks_its_own(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    before = live_children()
    m = llem.measure(devices=[0], sample_interval_ms=10)
    with m as outer:  # t = 0..3
        clock.advance(1.0)
        with m as inner:  # t = 1..3
            assert len(live_children() - before) == 2
            time.sleep(0.05)
            clock.advance(2.0)
    assert gpu_joules(outer) == 100.0 * 2 + 300.0 * 1
    assert gpu_joules(inner) == 100.0 * 1 + 300.0 * 1
    assert inner.samples and outer.samples


def test_a_child_killed_between_windows_makes_the_next_fork_its_own(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    before = live_children()
    m = llem.measure(devices=[0], sample_interval_ms=10)
    with m:
        clock.advance(1.0)
    (child,) = live_children() - before
    os.kill(child, signal.SIGKILL)
    assert process_gone(child, within_s=2.0)
    started_s = time.monotonic()
    with m as measured:
        time.sleep(0.05)
        clock.advance(1.0)
    assert time.monotonic() - started_s < 5.0
    assert gpu_joules(measured) == 100.0  # t = 1..2
    assert measured.samples  # from the window's own child
    (warning,) = [w for w in measured.warnings if w.code == "sampler_error"]
    assert f"pid {child}" in warning.message and "forked its own" in warning.message


def test_a_process_forked_from_the_owner_measures_with_its_own_child(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    # A data loader's worker, say: the kept child and its pipe belong to the owner.
    m = llem.measure(devices=[0], sample_interval_ms=10)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            with m as measured:
                time.sleep(0.05)
                clock.advance(1.0)
            ok = gpu_joules(measured) == 100.0 and bool(measured.samples)
            os.write(write, b"ok" if ok else b"wrong")
        except BaseException as e:  # noqa: BLE001 - reported to the parent, then exit
            os.write(write, f"{type(e).__name__}: {e}".encode()[:500])
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"ok"
    with m as measured:  # the owner's kept child still serves it
        clock.advance(1.0)
    assert gpu_joules(measured) == 100.0
    assert "sampler_error" not in [w.code for w in measured.warnings]


def test_a_window_whose_opening_fails_gives_the_kept_child_back(
    two_gpus: FakeNvml, clock: ManualClock
) -> None:
    calls: list[int] = []

    def barrier() -> None:  # the first window's opening fails, as a broken rank makes it
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a rank did not come")

    before = live_children()
    m = llem.measure(devices=[0], sample_interval_ms=10, barrier=barrier)
    with pytest.raises(RuntimeError, match="did not come"), m:
        pass
    with m as measured:
        clock.advance(1.0)
    assert len(live_children() - before) == 1  # the kept child, no second one
    assert gpu_joules(measured) == 100.0
