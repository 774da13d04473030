"""Which worker failed, read from the summary `torch.distributed` prints when one does.

When a worker exits non-zero, the launcher agent stops the others and prints a summary
naming the rank of the first failure ("Root Cause") and of the others ("Failures"),
each with its exit code (a negative code is the signal that killed it).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

_ENTRY = re.compile(r"rank\s*:\s*(?P<rank>\d+)[^\n]*\n\s*exitcode\s*:\s*(?P<code>-?\d+)")
_AGENT_LINE = re.compile(r"^[IWE]\d{4} .*torch/distributed/elastic/")


@dataclass(frozen=True)
class RankFailure:
    """One worker that ended badly."""

    rank: int
    exit_code: int

    def describe(self) -> str:
        """`rank 1 was killed by SIGKILL (exit code -9)` or `rank 1 exited with code 2`."""
        if self.exit_code >= 0:
            return f"rank {self.rank} exited with code {self.exit_code}"
        try:
            name = signal.Signals(-self.exit_code).name
        except ValueError:
            name = f"signal {-self.exit_code}"
        return f"rank {self.rank} was killed by {name} (exit code {self.exit_code})"


def failed_ranks(text: str) -> tuple[list[RankFailure], list[RankFailure]]:
    """The first failures and the other failures found in a launcher's output."""
    before, found, after = text.rpartition("Root Cause")
    if not found:
        return [], []
    others_text = before.rpartition("Failures:")[2]
    return _entries(after), _entries(others_text)


def describe(exit_code: int, text: str) -> str:
    """One phrase saying which ranks failed and how, from the launcher's output."""
    first, others = failed_ranks(text)
    if not first:
        return f"the worker launch exited with code {exit_code} (its output is above)"
    message = "worker " + "; ".join(f.describe() for f in first)
    if others:
        message += f" (then {', '.join(f.describe() for f in others)})"
    return message


def before_agent_report(lines: list[str]) -> list[str]:
    """The workers' own output (a traceback, say): what precedes the agent's messages."""
    for k, line in enumerate(lines):
        if _AGENT_LINE.match(line):
            return lines[:k]
    return lines


def _entries(text: str) -> list[RankFailure]:
    return [RankFailure(int(m["rank"]), int(m["code"])) for m in _ENTRY.finditer(text)]
