"""The sampler in a child process, so that its ticks never wait for this process's GIL.

At 10 ms a sampler thread takes the GIL a hundred times a second, each time the
inference loop waits (docs/performance.md). Here the same schedule
(`PowerThermalSampler.run_until`) runs in a child forked when the sampler is created,
before a window opens, so the fork is not in the window. Forking (not spawning) lets
the child read the sources exactly as they are in this process: the opened NVML
devices, the simulated NVML of the tests, and `psutil` for this process's pid. Its
timestamps are `time.monotonic`, CLOCK_MONOTONIC, which on Linux is one clock for every
process, so they compare with the window's edges.

One child serves any number of windows, one at a time: it samples only between
`start()` and `stop()`, returns that window's samples at `stop()` through a pipe, with
what its copies of the sources changed (a GPU whose power reading switched to the 1 s
average: `SampleSource.handover`), which the originals adopt, and waits for the next
`start()`. `close()` ends it. Nothing waits without a bound: a child that does not answer
in time is killed and its samples are lost, which `errors` says (the result's
`sampler_errors`); such a sampler serves no further window. The child exits on `close`,
when this process dies (its end of the pipe closes, or its parent changes) and, being a
daemon, when this process exits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import select
import signal
import threading
import time
from multiprocessing.connection import Connection

from llenergymeasure.core.power_thermal import PowerThermalSampler, SampleSource
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.log import logger

# Bounds on every wait for the child (seconds): its start, a first tick, the last tick
# plus the transfer of the samples (about 50 ms per 10,000 samples), its exit.
READY_TIMEOUT_S = 10.0
START_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 2.0
# How often a child waiting for its next window checks that its parent is alive: the
# pipe's EOF does not come while a process this one forked since holds its end.
PARENT_CHECK_S = 1.0
ERROR_KEY = "sampler process"
_FIELDS = tuple(f.name for f in dataclasses.fields(PowerThermalSample))


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def can_fork() -> bool:
    """True where a sampling process can be forked (not on Windows)."""
    return "fork" in multiprocessing.get_all_start_methods()


class ProcessSampler:
    """Samples `sources` every `interval_ms` in a forked child between `start` and `stop`.

    `start` and `stop` may repeat, one window after another, in the same child; `close`
    ends it. Samples, source errors and `cpu_s` are the last window's.

    Attributes:
        errors: failed readings by source over the last window (as
            `PowerThermalSampler.errors`), and `ERROR_KEY` where the child itself failed
            (kept: the sampler then serves no further window).
        cpu_s: CPU seconds the child spent sampling over the last window.
        pid: the child's process id.

    Raises:
        OSError: the child could not be started, or did not answer in time.

    """

    def __init__(self, sources: list[SampleSource], interval_ms: int) -> None:
        self.sources = sources
        self.errors: dict[str, str] = {}
        self.cpu_s = 0.0
        self._started = False
        self._samples: list[PowerThermalSample] | None = []  # None while sampling
        self._lock = threading.Lock()  # live telemetry asks from its own thread
        self._owner_pid = os.getpid()  # a process forked from this one must not close it
        context = multiprocessing.get_context("fork")
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_sample_in_child,
            args=(child_conn, self._conn, sources, interval_ms, os.getpid()),
            name="llem-sampler",
            daemon=True,
        )
        # A stop signal landing inside the fork's own hooks (logging releases its locks
        # there) is swallowed ("Exception ignored"): blocked, it arrives after the fork.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            self._process.start()
        except AssertionError as e:  # multiprocessing's refusal inside a daemonic process
            raise OSError(f"the sampling process cannot start here: {e}") from e
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        child_conn.close()
        try:
            ready = self._conn.poll(READY_TIMEOUT_S) and self._conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self._end_child()
            raise OSError(f"the sampling process did not start within {READY_TIMEOUT_S:g} s")
        self.pid = self._process.pid

    @property
    def alive(self) -> bool:
        """True while the child can serve a window: it has not failed nor been closed."""
        return ERROR_KEY not in self.errors and not self._conn.closed and self._process.is_alive()

    def start(self) -> None:
        """Take the first sample now (before this returns), then one per interval.

        What the previous window left (samples, source errors, `cpu_s`) is forgotten; a
        child that failed stays failed.
        """
        self.errors = {k: v for k, v in self.errors.items() if k == ERROR_KEY}
        self.cpu_s = 0.0
        self._samples = None
        self._started = True
        if self._ask("start", START_TIMEOUT_S) is None:
            self._end_child()

    def samples_since(self, count: int) -> list[PowerThermalSample]:
        """The samples after the first `count`: asked of the child while it samples.

        None before `start`; after `stop`, those it returned. A child that does not
        answer within `START_TIMEOUT_S` has failed (as in `stop`).
        """
        if self._samples is not None:
            return self._samples[count:]
        if not self._started:
            return []
        rows = self._ask(("since", count), START_TIMEOUT_S)
        return [PowerThermalSample(*row) for row in rows] if isinstance(rows, list) else []

    def stop(self) -> list[PowerThermalSample]:
        """Take a last sample and return the window's samples (none if the child failed).

        The child stays, waiting for the next `start` (or `close`). Without a `start`
        since the last `stop` (a window whose opening failed) there is nothing to ask.
        """
        if self._samples is not None:
            return self._samples
        reply = self._ask("stop", STOP_TIMEOUT_S)
        if reply is None:
            self._end_child()
            self._samples = []
            return []
        rows, errors, handovers, self.cpu_s = reply
        for source, state in zip(self.sources, handovers, strict=True):
            source.take_over(state)
        for source, error in errors.items():
            logger.warning(f"sampler: {source} failed: {error}")
        self.errors.update(errors)
        self._samples = [PowerThermalSample(*row) for row in rows]
        return self._samples

    def close(self) -> None:
        """End the child: ask it to exit, without waiting for it.

        Its teardown (unmapping the memory it shares with this process, tens of ms for a
        loaded model) need not be waited for. Nothing happens in a process forked from
        this one (it inherited the pipe, not the child), nor a second time.
        """
        if os.getpid() != self._owner_pid:
            return
        with self._lock:
            if self._conn.closed:
                return
            with contextlib.suppress(OSError):  # the child has ended already
                self._conn.send("close")
            self._conn.close()

    def _ask(self, command: object, timeout_s: float) -> object | None:
        """The child's answer to `command`; None (and an error recorded) without one."""
        with self._lock:
            if ERROR_KEY in self.errors:
                return None
            try:
                self._conn.send(command)
                if self._conn.poll(timeout_s):
                    return self._conn.recv()
                problem = f"no answer to {command!r} within {timeout_s:g} s"
            except (OSError, EOFError) as e:
                problem = f"it ended before {command!r} ({type(e).__name__})"
            self.errors[ERROR_KEY] = f"the sampling process failed: {problem}; samples lost"
        logger.warning(f"sampler: {self.errors[ERROR_KEY]}")
        return None

    def _end_child(self) -> None:
        """End a child that failed: wait a bounded time, then kill it."""
        self._process.join(EXIT_TIMEOUT_S)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(EXIT_TIMEOUT_S)
        with self._lock:
            self._conn.close()


def _sample_in_child(
    conn: Connection,
    parent_end: Connection,
    sources: list[SampleSource],
    interval_ms: int,
    parent_pid: int,
) -> None:
    """The child: for each window, wait for `start`, sample until `stop`, send the samples."""
    parent_end.close()  # so that this end sees EOF when the parent dies
    # A thread of the parent may have held a log handler's lock at the fork: never log.
    logger.disable("llenergymeasure")
    # Stop signals are the parent's to handle (it ends this child as it unwinds); the
    # parent's handlers and its wake-up fd (the second-signal watcher) are not inherited.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by the parent's fork
    sampler = PowerThermalSampler(sources, interval_ms)
    # One poll object for the child's life: `Connection.poll` builds a selector at every
    # call, which on a cold cache (after a sleep) costs more than the tick's readings.
    poller = select.poll()
    poller.register(conn.fileno(), select.POLLIN)
    conn.send("ready")
    try:
        while _next_start(conn, parent_pid):
            reply = _sample_window(conn, poller, sampler, parent_pid)
            if reply is None:
                return
            conn.send(reply)
    except (EOFError, OSError):
        return


def _next_start(conn: Connection, parent_pid: int) -> bool:
    """Wait for the next window's `start`; False on `close`, EOF or the parent's death."""
    while not conn.poll(PARENT_CHECK_S):
        if os.getppid() != parent_pid:
            return False
    return conn.recv() == "start"


def _sample_window(
    conn: Connection, poller: select.poll, sampler: PowerThermalSampler, parent_pid: int
) -> tuple | None:
    """One window: its samples, errors, handovers and CPU time; None to exit instead."""
    cpu_start_s = time.process_time()
    sampler.errors = {}
    for source in sampler.sources:
        source.errors.clear()
    closing = False

    def stop_requested(delay_s: float) -> bool:
        """Wait `delay_s`, answering requests for samples meanwhile; True on `stop`."""
        nonlocal closing
        deadline_s = time.monotonic() + delay_s
        while poller.poll(max(0.0, deadline_s - time.monotonic()) * 1000):  # ms
            message = conn.recv()
            if not isinstance(message, tuple):  # "stop", or "close" (this process's exit)
                closing = message != "stop"
                return True
            _, count = message  # ("since", count)
            conn.send(_rows(sampler.samples[count:]))
        return os.getppid() != parent_pid

    sampler.begin()
    conn.send("started")
    sampler.run_until(stop_requested)
    if closing or os.getppid() != parent_pid:
        return None
    rows = _rows(sampler.finish())
    handovers = [source.handover() for source in sampler.sources]
    return rows, sampler.errors, handovers, time.process_time() - cpu_start_s


def _rows(samples: list[PowerThermalSample]) -> list[tuple]:
    """Samples as plain tuples, quicker through the pipe than the dataclasses."""
    return [tuple(getattr(s, name) for name in _FIELDS) for s in samples]
