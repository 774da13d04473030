"""Full-load CPU power assumed by the CPU estimate: configured, from a table, or a default.

The table holds the vendor's TDP (Intel: "TDP" or "Processor Base Power"; AMD: "Default
TDP") and hardware threads per socket of common server and desktop CPUs, from the
vendors' specification pages: Intel ARK (ark.intel.com) and AMD's processor
specifications (amd.com/en/products/specifications/processors). TDP is a thermal
design figure, not a measured draw: sustained all-core load can exceed it (desktop
turbo limits) or stay below it.

A host sees some number of logical cores (all of a bare-metal machine's, or a VM's
vCPUs); their full-load power is TDP x visible logical cores / threads per socket, so a
2-vCPU slice of a 112-thread 350 W socket counts 6.25 W, and two such sockets 700 W.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llenergymeasure.defaults import DEFAULT_SOCKET_TDP_W, DEFAULT_THREADS_PER_SOCKET


@dataclass(frozen=True)
class CpuPowerSpec:
    """One CPU model: its name as the vendor writes it, TDP and threads per socket."""

    name: str
    tdp_w: float
    threads_per_socket: int


CPU_POWER_TABLE = (
    # Intel Xeon Scalable, 1st gen (Skylake-SP)
    CpuPowerSpec("Intel Xeon Platinum 8180", 205, 56),
    CpuPowerSpec("Intel Xeon Gold 6148", 150, 40),
    CpuPowerSpec("Intel Xeon Gold 6130", 125, 32),
    # 2nd gen (Cascade Lake)
    CpuPowerSpec("Intel Xeon Platinum 8280", 205, 56),
    CpuPowerSpec("Intel Xeon Gold 6248", 150, 40),
    CpuPowerSpec("Intel Xeon Gold 6248R", 205, 48),
    # 3rd gen (Ice Lake)
    CpuPowerSpec("Intel Xeon Platinum 8380", 270, 80),
    CpuPowerSpec("Intel Xeon Platinum 8358", 250, 64),
    CpuPowerSpec("Intel Xeon Gold 6338", 205, 64),
    # 4th gen (Sapphire Rapids)
    CpuPowerSpec("Intel Xeon Platinum 8480+", 350, 112),
    CpuPowerSpec("Intel Xeon Platinum 8468", 350, 96),
    CpuPowerSpec("Intel Xeon Gold 6430", 270, 64),
    # 5th gen (Emerald Rapids)
    CpuPowerSpec("Intel Xeon Platinum 8592+", 350, 128),
    CpuPowerSpec("Intel Xeon Gold 6548Y+", 250, 64),
    # Xeon 6 (Granite Rapids, Sierra Forest: one thread per core)
    CpuPowerSpec("Intel Xeon 6980P", 500, 256),
    CpuPowerSpec("Intel Xeon 6780E", 330, 144),
    # AMD EPYC 7001 (Naples), 7002 (Rome), 7003 (Milan)
    CpuPowerSpec("AMD EPYC 7601", 180, 64),
    CpuPowerSpec("AMD EPYC 7742", 225, 128),
    CpuPowerSpec("AMD EPYC 7702", 200, 128),
    CpuPowerSpec("AMD EPYC 7502", 180, 64),
    CpuPowerSpec("AMD EPYC 7763", 280, 128),
    CpuPowerSpec("AMD EPYC 7713", 225, 128),
    CpuPowerSpec("AMD EPYC 7543", 225, 64),
    # AMD EPYC 9004 (Genoa, Bergamo), 9005 (Turin)
    CpuPowerSpec("AMD EPYC 9654", 360, 192),
    CpuPowerSpec("AMD EPYC 9554", 360, 128),
    CpuPowerSpec("AMD EPYC 9454", 290, 96),
    CpuPowerSpec("AMD EPYC 9374F", 320, 64),
    CpuPowerSpec("AMD EPYC 9754", 360, 256),
    CpuPowerSpec("AMD EPYC 9755", 500, 256),
    CpuPowerSpec("AMD EPYC 9965", 500, 384),
    # An EPYC whose model name hides the generation (common in VMs, e.g. "AMD EPYC"):
    # the 64-core EPYC 7763 (2.19 W per thread), a common cloud part and close to the
    # median of the EPYC parts above (2.07 W per thread).
    CpuPowerSpec("AMD EPYC", 280, 128),
    # Desktop and workstation
    CpuPowerSpec("Intel Core i9-14900K", 125, 32),
    CpuPowerSpec("Intel Core i9-13900K", 125, 32),
    CpuPowerSpec("Intel Core i9-12900K", 125, 24),
    CpuPowerSpec("Intel Core i7-13700K", 125, 24),
    CpuPowerSpec("Intel Core i5-13600K", 125, 20),
    CpuPowerSpec("AMD Ryzen 9 7950X", 170, 32),
    CpuPowerSpec("AMD Ryzen 9 5950X", 105, 32),
    CpuPowerSpec("AMD Ryzen 7 7700X", 105, 16),
    CpuPowerSpec("AMD Ryzen 7 5800X", 105, 16),
    CpuPowerSpec("AMD Ryzen Threadripper PRO 5995WX", 280, 128),
    CpuPowerSpec("AMD Ryzen Threadripper 7980X", 350, 128),
)


@dataclass(frozen=True)
class CpuPowerAssumption:
    """The full-load power the estimate uses for the cores a host sees, and its origin.

    `source` is `configured`, `table:<model>` or `default`; `explanation` is the sentence
    recorded in the result's assumptions.
    """

    full_load_w: float
    source: str
    explanation: str


def _tokens(text: str) -> list[str]:
    return re.sub(r"\((r|tm)\)", " ", text.lower()).split()


def _contains(words: list[str], part: list[str]) -> bool:
    return any(words[i : i + len(part)] == part for i in range(len(words) - len(part) + 1))


def lookup_cpu(model_name: str | None) -> CpuPowerSpec | None:
    """The table entry whose name appears, word for word, in a `/proc/cpuinfo` model name.

    `(R)` and `(TM)` are ignored and case does not matter; the longest matching name wins,
    so `AMD EPYC 9654 96-Core Processor` is the 9654, not the generation-less `AMD EPYC`.
    """
    if not model_name:
        return None
    words = _tokens(model_name)
    matches = [spec for spec in CPU_POWER_TABLE if _contains(words, _tokens(spec.name))]
    return max(matches, key=lambda spec: len(_tokens(spec.name)), default=None)


def cpu_power_assumption(
    model_name: str | None, logical_cores: int, configured_w: float | None = None
) -> CpuPowerAssumption:
    """Full-load power of the `logical_cores` this host sees, and which assumption gave it.

    Args:
        model_name: `/proc/cpuinfo`'s model name (None where unknown).
        logical_cores: logical cores visible to the host (what `/proc/stat` covers).
        configured_w: `measurement.energy.cpu_tdp_w`, the full-load power of those cores;
            it overrides the table and the default.

    """
    if configured_w is not None:
        return CpuPowerAssumption(
            configured_w,
            "configured",
            f"{configured_w:g} W (configured: measurement.energy.cpu_tdp_w)",
        )
    spec = lookup_cpu(model_name)
    if spec is not None:
        full_load_w = spec.tdp_w * logical_cores / spec.threads_per_socket
        return CpuPowerAssumption(
            full_load_w,
            f"table:{spec.name}",
            f"{full_load_w:g} W: {spec.name} TDP {spec.tdp_w:g} W per "
            f"{spec.threads_per_socket} threads x {logical_cores} logical cores seen",
        )
    full_load_w = DEFAULT_SOCKET_TDP_W * logical_cores / DEFAULT_THREADS_PER_SOCKET
    return CpuPowerAssumption(
        full_load_w,
        "default",
        f"{full_load_w:g} W: CPU model {model_name or 'unknown'!r} is not in llem's table, "
        f"assumed {DEFAULT_SOCKET_TDP_W:g} W per {DEFAULT_THREADS_PER_SOCKET} threads x "
        f"{logical_cores} logical cores seen",
    )
