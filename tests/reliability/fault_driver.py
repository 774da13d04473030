"""Run the real `llem` command and strike it when it reaches one point of a file write.

    python fault_driver.py --at process_0.json:written --do kill -- run CONFIG

Every file llem writes goes through `llenergymeasure.fileio.atomic_target` (a temporary
beside the file, fsync, `os.replace`). This driver wraps that function and `os.replace`,
the boundary between llem and the operating system, so it sees each write of a file
pass these stages, in order:

    before     nothing of the file written yet
    partial    its temporary file half written (as a write cut off halfway leaves it)
    written    its temporary file complete, not yet fsynced
    synced     fsynced, not yet renamed over the file
    replaced   renamed into place (the directory not yet fsynced)

`--at NAME:STAGE[:N]` picks the N-th write (default the first) of a file whose name
matches NAME (a shell pattern: `quick_*.json` is an aggregated result), and `--do` what
happens there:

    kill      SIGKILL to this process: it stops dead, nothing is cleaned up
    sigint    SIGINT to this process (Ctrl-C), handled as llem handles it
    sigterm   SIGTERM to this process, the same
    enospc    the write fails with "No space left on device" (stage partial only)
    stall     one long native call, SIGTERM to this process once inside it (a matrix product
              power taking tens of seconds, the GIL released, as a huge prefill): Python runs no
              handler until it returns; `stalling` is printed on stderr first

Nothing of llem's own logic is changed: the driver only watches the file writes and
acts at one of them. It runs in its own process, so the patches die with it.
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGES = ("before", "partial", "written", "synced", "replaced")
ACTIONS = ("kill", "sigint", "sigterm", "enospc", "stall")
STALL_MATRIX_SIZE = 4096
STALL_POWER = 2**16 - 1  # about 32 products of 4096 x 4096: tens of seconds, one call


class Trigger:
    """The one point of one write where the action happens."""

    def __init__(self, spec: str, action: str) -> None:
        name, stage, *rest = spec.split(":")
        if stage not in STAGES or action not in ACTIONS:
            raise SystemExit(f"bad --at {spec!r} or --do {action!r}")
        self.name, self.stage, self.action = name, stage, action
        self.occurrence = int(rest[0]) if rest else 1
        self.seen = 0

    def starts(self, name: str) -> bool:
        """Count a write of `name`; True when it is the write to act on."""
        if not fnmatch.fnmatchcase(name, self.name):
            return False
        self.seen += 1
        return self.seen == self.occurrence

    def act(self, tmp: Path | None = None) -> None:
        """Do the action now (from the stage `partial`, `tmp` is half written first)."""
        if self.stage == "partial" and tmp is not None:
            cut_in_half(tmp)
        if self.action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if self.action == "stall":
            stall()
            return
        signum = {"kill": signal.SIGKILL, "sigint": signal.SIGINT, "sigterm": signal.SIGTERM}
        os.kill(os.getpid(), signum[self.action])


def stall() -> None:
    """Ask this process to stop, then keep its main thread in native code for long."""
    import torch

    matrix = torch.rand(STALL_MATRIX_SIZE, STALL_MATRIX_SIZE)
    # Sent once the main thread is inside the call, so that its handler has to wait.
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
    print("stalling", file=sys.stderr, flush=True)
    torch.linalg.matrix_power(matrix, STALL_POWER)


def cut_in_half(path: Path) -> None:
    """Leave the first half of a file, as a write stopped halfway does."""
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


def install(trigger: Trigger) -> None:
    """Wrap `atomic_target` and `os.replace` before llem imports its writers."""
    from llenergymeasure import fileio

    real_target = fileio.atomic_target
    real_replace = os.replace
    active: list[Path] = []

    @contextmanager
    def watched_target(path: Path) -> Iterator[Path]:
        if not trigger.starts(Path(path).name):
            with real_target(path) as tmp:
                yield tmp
            return
        active.append(Path(path))
        if trigger.stage == "before":
            trigger.act()
        with real_target(path) as tmp:
            yield tmp
            if trigger.stage in ("partial", "written"):
                trigger.act(tmp)

    def watched_replace(src, dst, **kwargs) -> None:
        acting = bool(active) and Path(dst) == active[-1]
        if acting and trigger.stage == "synced":
            trigger.act()
        real_replace(src, dst, **kwargs)
        if acting and trigger.stage == "replaced":
            trigger.act()

    fileio.atomic_target = watched_target
    os.replace = watched_replace


def main() -> None:
    """Parse the driver's options, install the watch, run `llem` with the rest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", required=True, help="NAME:STAGE[:N]")
    parser.add_argument("--do", required=True, choices=ACTIONS)
    parser.add_argument("llem_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    install(Trigger(args.at, args.do))
    from llenergymeasure.cli import main as llem_main

    sys.argv = ["llem", *[a for a in args.llem_args if a != "--"]]
    llem_main()


if __name__ == "__main__":
    main()
