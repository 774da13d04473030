"""The stop-signal handlers, on this very process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from llenergymeasure.errors import Interrupted
from llenergymeasure.orchestration.signals import forward_stop_signals, raise_on_stop_signals


def test_the_first_signal_raises_once_and_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stopped:
        with raise_on_stop_signals():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)
            finally:
                os.kill(os.getpid(), signal.SIGINT)  # while unwinding: ignored
    assert stopped.value.signum == signal.SIGTERM and stopped.value.exit_code == 143
    assert stopped.value.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_signal_is_forwarded_to_the_childs_group_and_recorded() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    )
    with forward_stop_signals(child, grace_s=30) as request:
        os.kill(os.getpid(), signal.SIGINT)
        assert child.wait(timeout=10) == -signal.SIGINT
    assert request.signum == signal.SIGINT


def test_a_second_signal_kills_the_group() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    time.sleep(0.5)  # let it ignore SIGTERM first
    with forward_stop_signals(child, grace_s=30) as request:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert child.wait(timeout=10) == -signal.SIGKILL
    assert request.signum == signal.SIGTERM


# A fork whose own hook takes a second: the stop signal lands while the fork is under way.
SIGNAL_DURING_A_FORK = """
import os, signal, sys, threading, time
os.register_at_fork(before=lambda: time.sleep(1.0))  # before llem's hooks: runs inside them
from llenergymeasure.errors import Interrupted
from llenergymeasure.orchestration.signals import exit_on_second_signal, raise_on_stop_signals
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
try:
    with raise_on_stop_signals(), exit_on_second_signal(lambda s: print("forced", s)):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        time.sleep(10)
except Interrupted as exc:
    print("interrupted", exc.signum)
    sys.exit(3)
"""


def test_one_signal_during_a_fork_is_one_stop_not_a_forced_exit() -> None:
    # The signal is delivered again after the fork; that delivery is no second signal.
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_DURING_A_FORK], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.split()) == (3, ["interrupted", "15"]), done.stderr
