"""Stopping a run on SIGINT (Ctrl-C) or SIGTERM without losing what it wrote.

One way per kind of run:

- `raise_on_stop_signals`: the measurement runs in this process (`llem run` with one
  process, or a worker). The first SIGINT or SIGTERM raises `Interrupted` in the main
  thread, so the run unwinds as after Ctrl-C: a file being written is abandoned (its
  temporary removed, the previous version intact), no completion marker is written, and
  the manifest records `interrupted`. Later signals are ignored while it unwinds.
- `forward_stop_signals`: the measurement runs in child processes (`accelerate launch`
  and its workers, in a process group of their own, so a terminal's Ctrl-C reaches only
  `llem`). The first signal is forwarded to that group and recorded, and the launcher
  reads their output until they have stopped. A second signal, or `grace_s` without an
  end, kills the group.

- `exit_on_second_signal`: around a measurement in this process. Python runs a signal
  handler only between bytecodes of the main thread, so the first signal waits while
  the main thread is in a long native call (the prefill of a huge batch). A second
  signal then ends the process at once: a thread woken through `signal.set_wakeup_fd`
  (written by the C-level handler, whatever the main thread is doing) records the
  experiment interrupted and calls `os._exit(128 + signum)`.

Python lets only the main thread install handlers; elsewhere all three leave them as
they are.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from llenergymeasure.errors import Interrupted
from llenergymeasure.log import logger

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], None]


@dataclass
class StopRequest:
    """The signal that asked child processes to stop; None while none has."""

    signum: int | None = None


# Forks in progress in this process. An exception raised inside the fork's own hooks
# (logging releases its locks there) is swallowed ("Exception ignored in _releaseLock"),
# so a stop signal that lands during a fork is delivered again just after it. Each such
# delivery is counted, so that `exit_on_second_signal` does not take it for a second one.
_forks_in_progress = 0
_redeliveries = 0
_redeliveries_lock = threading.Lock()
REDELIVER_AFTER_S = 0.05


def _fork_begins() -> None:
    global _forks_in_progress
    _forks_in_progress += 1


def _fork_ends() -> None:
    global _forks_in_progress
    _forks_in_progress = max(0, _forks_in_progress - 1)


def _forked_child() -> None:
    global _forks_in_progress, _redeliveries, _redeliveries_lock
    _forks_in_progress = _redeliveries = 0
    _redeliveries_lock = threading.Lock()


os.register_at_fork(before=_fork_begins, after_in_parent=_fork_ends, after_in_child=_forked_child)


@contextmanager
def raise_on_stop_signals() -> Iterator[None]:
    """While inside, the first SIGINT or SIGTERM raises `Interrupted(signum)`."""
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            logger.warning(f"{signal.Signals(signum).name} received: already stopping")
            return
        if _forks_in_progress:
            _deliver_again(signum)
            return
        raised = True
        raise Interrupted(signum)

    with _handlers(handler):
        yield


def _deliver_again(signum: int) -> None:
    global _redeliveries
    with _redeliveries_lock:
        _redeliveries += 1
    threading.Timer(REDELIVER_AFTER_S, os.kill, (os.getpid(), signum)).start()


def _was_delivered_again() -> bool:
    """True once for each delivery of `_deliver_again` (it counts no second signal)."""
    global _redeliveries
    with _redeliveries_lock:
        if _redeliveries == 0:
            return False
        _redeliveries -= 1
        return True


@contextmanager
def exit_on_second_signal(last_words: Callable[[int], None]) -> Iterator[None]:
    """While inside, a second SIGINT or SIGTERM ends the process within a fraction of a second.

    Use it inside `raise_on_stop_signals` (whose handler makes the C-level handler write
    the wakeup byte), around work in this process only: child processes are not stopped.

    Args:
        last_words: called with the signal number just before the process ends (records
            the experiment interrupted); an error in it does not stop the exit.

    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(read_fd, done, last_words), daemon=True, name="llem-stop-watch"
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)


def _watch(read_fd: int, done: threading.Event, last_words: Callable[[int], None]) -> None:
    """Count stop signals from the wakeup pipe; at the second, end the process."""
    seen = 0
    while not done.is_set():
        ready, _, _ = select.select([read_fd], [], [], 0.2)
        if not ready:
            continue
        for signum in os.read(read_fd, 64):
            if signum not in STOP_SIGNALS or _was_delivered_again():
                continue
            seen += 1
            if seen < 2:
                continue
            try:
                last_words(signum)
            except BaseException as exc:  # noqa: BLE001 - the exit must happen anyway
                logger.warning(f"could not record the interruption: {exc}")
            os._exit(128 + signum)


@contextmanager
def forward_stop_signals(proc: subprocess.Popen, grace_s: float) -> Iterator[StopRequest]:
    """While inside, SIGINT and SIGTERM are passed on to the process group of `proc`.

    `proc` must lead its own process group (started with `start_new_session=True`).

    Yields:
        The stop request, whose `signum` is set once a signal was forwarded.

    """
    request = StopRequest()
    timer: threading.Timer | None = None

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal timer
        if request.signum is not None:
            signal_group(proc, signal.SIGKILL)
            return
        request.signum = signum
        signal_group(proc, signum)
        timer = threading.Timer(grace_s, signal_group, (proc, signal.SIGKILL))
        timer.daemon = True
        timer.start()

    try:
        with _handlers(handler):
            yield request
    finally:
        if timer is not None:
            timer.cancel()


def signal_group(proc: subprocess.Popen, signum: int) -> None:
    """Send `signum` to every process of the group that `proc` leads, if any is left."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass  # the group has ended already: nothing left to stop


@contextmanager
def _handlers(handler: Handler) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
