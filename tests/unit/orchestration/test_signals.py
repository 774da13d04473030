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
