"""Sampler fidelity: achieved interval and the sampler's CPU cost, process and thread.

Runs the real samplers with the host CPU source at 100 ms and 10 ms while the main
thread keeps one core busy (as inference would): the sampling process a window uses
(`ProcessSampler`) and the in-process thread it falls back to (`PowerThermalSampler`).
Prints the median, p99 and largest gap between ticks against the configured interval,
and the sampler's CPU time (the child's own clock; the thread's entry in /proc) as a
share of one core. Targets: median within 2 % of the interval, max gap under 3x, CPU
share under 1 % at 100 ms.

    .venv/bin/python bench/sampler.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson

from llenergymeasure.core.power_thermal import CpuSampleSource, PowerThermalSampler
from llenergymeasure.core.sampler_process import ProcessSampler
from llenergymeasure.domain.metrics import percentile

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(native_id: int) -> float:
    """User + system CPU seconds of one thread of this process (Linux /proc)."""
    fields = Path(f"/proc/self/task/{native_id}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


def busy_for(seconds: float) -> None:
    """Keep the calling thread on a core, as an inference loop would."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        sum(i * i for i in range(2000))


def run(mode: str, interval_ms: int, seconds: float) -> dict:
    if mode == "process":
        process = ProcessSampler([CpuSampleSource()], interval_ms)
        process.start()
        wall_start = time.monotonic()
        busy_for(seconds)
        wall_s = time.monotonic() - wall_start
        samples = process.stop()
        cpu_s = process.cpu_s  # the child's CPU time from start to stop
    else:
        sampler = PowerThermalSampler([CpuSampleSource()], interval_ms)
        sampler.start()
        time.sleep(0.05)
        cpu_start = thread_cpu_s(sampler.thread_native_id)
        wall_start = time.monotonic()
        busy_for(seconds)
        cpu_s = thread_cpu_s(sampler.thread_native_id) - cpu_start
        wall_s = time.monotonic() - wall_start
        samples = sampler.stop()
    times = [s.t_s for s in samples[:-1]]  # the last sample is the stop() read
    gaps_ms = [(b - a) * 1000 for a, b in zip(times, times[1:], strict=False)]
    median = statistics.median(gaps_ms)
    return {
        "mode": mode,
        "interval_ms": interval_ms,
        "samples": len(times),
        "median_ms": median,
        "p99_ms": percentile(gaps_ms, 99),
        "max_gap_ms": max(gaps_ms),
        "median_error_pct": 100 * (median - interval_ms) / interval_ms,
        "max_gap_ratio": max(gaps_ms) / interval_ms,
        "cpu_share_pct": 100 * cpu_s / wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=Path("results/bench/sampler.json"))
    args = parser.parse_args()
    rows = [
        run(mode, interval, args.seconds)
        for mode in ("process", "thread")
        for interval in (100, 10)
    ]
    print(
        f"{'sampler':>8} {'interval':>9} {'samples':>8} {'median':>9} {'p99':>9} "
        f"{'max gap':>9} {'cpu %':>7}"
    )
    for r in rows:
        print(
            f"{r['mode']:>8} {r['interval_ms']:>7} ms {r['samples']:>8} {r['median_ms']:>6.2f} ms "
            f"{r['p99_ms']:>6.2f} ms {r['max_gap_ms']:>6.2f} ms {r['cpu_share_pct']:>6.3f}"
        )
    at_100 = rows[0]
    print(
        "headline: sampling process at 100 ms: median error "
        f"{at_100['median_error_pct']:+.2f} % (target within 2 %), max gap "
        f"{at_100['max_gap_ratio']:.2f}x (target < 3x), sampler CPU "
        f"{at_100['cpu_share_pct']:.3f} % of a core (target < 1 %)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(),
        "machine": f"{platform.node()} {platform.processor() or platform.machine()} "
        f"x{os.cpu_count()}",
        "seconds": args.seconds,
        "rows": rows,
    }
    args.out.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
