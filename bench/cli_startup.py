"""How long `llem --help` takes: a fresh interpreter each time, as a shell starts it.

Runs `python -m llenergymeasure --help` `--runs` times and prints the wall time
(median and fastest) and CPU time of each run's process, then the slowest imports of
one `python -X importtime` run. Target: under 0.3 s on an idle machine.

    .venv/bin/python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

COMMAND = [sys.executable, "-m", "llenergymeasure", "--help"]
TARGET_S = 0.3


def one_run() -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one `llem --help`."""
    before = os.times()
    started = time.perf_counter()
    subprocess.run(COMMAND, check=True, stdout=subprocess.DEVNULL)
    wall_s = time.perf_counter() - started
    after = os.times()
    cpu_s = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall_s, cpu_s


def slowest_imports(count: int) -> list[tuple[float, str]]:
    """The top-level imports with the largest cumulative time, in ms."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *COMMAND[1:]],
        check=True,
        capture_output=True,
        text=True,
    )
    found = []
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, name = line.split("|")
        if not name.startswith("  "):  # imported by the command itself, not by a dependency
            found.append((int(cumulative_us) / 1000, name.strip()))
    return sorted(found, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="runs to time (default 20)")
    args = parser.parse_args()
    one_run()  # the first run fills the page cache
    runs = [one_run() for _ in range(args.runs)]
    walls = [wall for wall, _ in runs]
    cpus = [cpu for _, cpu in runs]
    load = os.getloadavg()[0]
    python = platform.python_version()
    print(f"{platform.node()}: {os.cpu_count()} cores, load {load:.2f}, Python {python}")
    print("slowest top-level imports (one -X importtime run, cumulative ms):")
    for ms, name in slowest_imports(8):
        print(f"  {ms:7.1f}  {name}")
    print(f"cpu time: median {statistics.median(cpus):.3f} s, min {min(cpus):.3f} s")
    verdict = "under" if statistics.median(walls) < TARGET_S else "over"
    print(
        f"llem --help: median {statistics.median(walls):.3f} s, min {min(walls):.3f} s over "
        f"{args.runs} runs ({verdict} the {TARGET_S} s target)"
    )


if __name__ == "__main__":
    main()
