"""ABBA rounds against a bare arm, and the 95 % interval of their median ratio.

Shared by the overhead benches (`overhead.py`, `engines.py`). A runner returns one call's
(window seconds, whole-call seconds, tokens, measurement CPU share or None); a round adds
one quad (bare, measured, measured, bare) per arm, so drifts of the machine cancel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

TARGET_HALF_WIDTH = 0.01
# Rounds before the interval may stop the loop early: fewer give a bootstrap too coarse.
MIN_ROUNDS_TO_STOP = 10

Runner = Callable[[], tuple[float, float, int, float | None]]


def interval(ratios: list[float]) -> tuple[float, float, float]:
    """Median ratio and its 95 % bootstrap interval (seeded)."""
    values = np.array(ratios)
    rng = np.random.default_rng(0)
    medians = np.median(rng.choice(values, (5000, len(values)), replace=True), axis=1)
    low, high = np.percentile(medians, [2.5, 97.5])
    return float(np.median(values)), float(low), float(high)


def half_width(ratios: list[float]) -> float:
    """Half the width of the 95 % interval; infinite under five ratios."""
    if len(ratios) < 5:
        return float("inf")
    _, low, high = interval(ratios)
    return (high - low) / 2


@dataclass
class Arm:
    """One comparison against bare: its quads' ratios (window, whole call) and CPU shares."""

    name: str
    ratios: list[float] = field(default_factory=list)
    call_ratios: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    cpu_shares: list[float] = field(default_factory=list)
    edges_ms: list[float] = field(default_factory=list)

    def interval(self) -> tuple[float, float, float]:
        """Median ratio over the window and its 95 % bootstrap interval."""
        return interval(self.ratios)

    def half_width(self) -> float:
        return max(half_width(self.ratios), half_width(self.call_ratios))


def run_abba(
    arms: dict[str, Arm],
    runners: dict[str, Runner],
    bare: Runner,
    max_minutes: float,
    max_rounds: int | None = None,
) -> tuple[int, float]:
    """Add one ABBA quad per arm, round-robin, until every interval is +-1 % or time ends.

    `max_rounds` stops after that many rounds whatever the intervals.

    Returns the number of rounds and the last bare throughput (tokens/s).
    """
    for _ in range(3):
        bare()
    deadline = time.monotonic() + max_minutes * 60
    rounds, bare_tps = 0, 0.0
    while time.monotonic() < deadline and (max_rounds is None or rounds < max_rounds):
        for name, arm in arms.items():
            a1, _, _, _ = bare()
            b1, call1, tokens_b1, share1 = runners[name]()
            b2, call2, tokens_b2, share2 = runners[name]()
            a2, _, tokens_a, _ = bare()
            arm.ratios.append((a1 + a2) / (b1 + b2))
            arm.call_ratios.append((a1 + a2) / (call1 + call2))
            arm.edges_ms += [1000 * (call1 - b1), 1000 * (call2 - b2)]
            arm.tokens_per_s.append((tokens_b1 + tokens_b2) / (b1 + b2))
            arm.cpu_shares += [s for s in (share1, share2) if s is not None]
            bare_tps = tokens_a / a2
        rounds += 1
        done = all(a.half_width() <= TARGET_HALF_WIDTH for a in arms.values())
        if rounds >= MIN_ROUNDS_TO_STOP and done:
            break
    return rounds, bare_tps
