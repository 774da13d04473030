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

Python lets only the main thread install handlers; elsewhere both leave them as they are.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from loguru import logger

from llenergymeasure.errors import Interrupted

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], None]


@dataclass
class StopRequest:
    """The signal that asked child processes to stop; None while none has."""

    signum: int | None = None


@contextmanager
def raise_on_stop_signals() -> Iterator[None]:
    """While inside, the first SIGINT or SIGTERM raises `Interrupted(signum)`."""
    raised = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if raised:
            logger.warning(f"{signal.Signals(signum).name} received: already stopping")
            return
        raised = True
        raise Interrupted(signum)

    with _handlers(handler):
        yield


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
