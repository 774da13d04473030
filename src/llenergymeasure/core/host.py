"""The identity of the machine a process runs on."""

from __future__ import annotations

import socket
from pathlib import Path

IDENTITY_FILES = (Path("/proc/sys/kernel/random/boot_id"), Path("/etc/machine-id"))


def host_identity() -> str:
    """What tells this machine from any other: its boot id, else its machine id, else its name.

    Containers on one kernel share the boot id, and also its CPU packages and RAPL
    counters, so they are one machine for machine-level energy; two hosts with the same
    name are not.
    """
    for path in IDENTITY_FILES:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return socket.gethostname()
