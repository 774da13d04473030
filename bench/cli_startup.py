"""CLI start-up: the wall time of `llem --help` in a fresh interpreter, against 0.3 s.

Runs `python -m llenergymeasure --help` (what the `llem` script runs) a few times in a
fresh process each, after one untimed run that warms the file cache, and prints the
median and the spread. The import time of the heaviest modules (`-X importtime`, one
more run) shows where the time goes. Target: median under 0.3 s.

    .venv/bin/python bench/cli_startup.py [--runs 9]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

TARGET_S = 0.3
COMMAND = [sys.executable, "-m", "llenergymeasure", "--help"]


def time_once() -> float:
    """Wall seconds of one `llem --help` in a fresh interpreter."""
    start = time.perf_counter()
    proc = subprocess.run(COMMAND, capture_output=True, text=True, timeout=120)
    elapsed_s = time.perf_counter() - start
    if proc.returncode != 0 or "Usage" not in proc.stdout:
        raise SystemExit(f"`llem --help` failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed_s


def heaviest_imports(count: int) -> list[tuple[str, float]]:
    """The top-level imports that took longest, cumulative seconds (`-X importtime`)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *COMMAND[1:]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, name = line.split("|")
        if not name[1:].startswith(" "):  # top level: not nested inside another import
            rows.append((name.strip(), int(cumulative_us) / 1e6))
    return sorted(rows, key=lambda row: row[1], reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--out", type=Path, default=Path("results/bench/cli_startup.json"))
    args = parser.parse_args()
    time_once()  # warm the file cache
    times_s = [time_once() for _ in range(args.runs)]
    median_s = statistics.median(times_s)
    imports = heaviest_imports(5)
    print(f"`llem --help`, {args.runs} fresh interpreters")
    print(f"{'median':>8} {'min':>8} {'max':>8}")
    print(f"{median_s:>7.3f}s {min(times_s):>7.3f}s {max(times_s):>7.3f}s")
    print("heaviest top-level imports: " + ", ".join(f"{n} {s:.3f} s" for n, s in imports))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(),
        "machine": f"{platform.node()} {platform.machine()} x{os.cpu_count()}",
        "times_s": times_s,
        "median_s": median_s,
        "heaviest_imports": imports,
    }
    args.out.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    verdict = "met" if median_s < TARGET_S else "NOT met"
    print(f"headline: `llem --help` median {median_s:.3f} s (target < {TARGET_S} s): {verdict}")


if __name__ == "__main__":
    main()
