"""CodeCarbon's tracker and llem's measurement, side by side on the same workload.

Both are compared with a bare `generate` loop in ABBA quads, in one process, on the
same batches (bench/overhead.py's workload): the throughput ratio tracked/bare of each
tool, with its 95 % bootstrap interval. CodeCarbon is an optional bench extra
(`pip install codecarbon`); it runs offline here (`OfflineEmissionsTracker`), with
its power read every second (`measure_power_secs=1`; its default is 15 s, which would
not sample a one-second run at all). llem samples at 100 ms.

    .venv/bin/python bench/vs_codecarbon.py [--max-minutes 6]
"""

from __future__ import annotations

import logging
import statistics
import time

from overhead import Arm, Workload, interval, parse_workload_args, report, run_abba


def codecarbon_runner(work: Workload):
    """A runner that builds a fresh tracker (untimed), then times start + work + stop."""
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError:
        raise SystemExit("codecarbon is not installed: .venv/bin/pip install codecarbon") from None
    logging.getLogger("codecarbon").setLevel(logging.ERROR)

    def run() -> tuple[float, float, int, None]:
        tracker = OfflineEmissionsTracker(
            country_iso_code="USA",
            measure_power_secs=1,
            save_to_file=False,
            log_level="error",
        )
        start = time.perf_counter()
        tracker.start()
        _, _, tokens, _ = work.bare()
        tracker.stop()
        wall_s = time.perf_counter() - start
        return wall_s, wall_s, tokens, None

    return run


def main() -> None:
    args = parse_workload_args(__doc__, max_minutes=6.0, out="results/bench/vs_codecarbon.json")
    work = Workload(args.model, args.batch_size, args.prompts, args.max_new_tokens)
    arms = {name: Arm(name) for name in ("codecarbon", "llem@100ms")}
    runners = {
        "codecarbon": codecarbon_runner(work),
        "llem@100ms": lambda: work.measured(work.at_100ms),
    }
    rounds, bare_tps = run_abba(arms, runners, work.bare, args.max_minutes)
    report(args, arms, rounds, bare_tps)
    # Whole calls: CodeCarbon's start and stop are in its timing, so llem's open and close are.
    cc, llem = (interval(arms[name].call_ratios) for name in ("codecarbon", "llem@100ms"))
    print(
        f"headline: tracked/bare throughput: codecarbon {cc[0]:.4f} [{cc[1]:.4f}, {cc[2]:.4f}], "
        f"llem {llem[0]:.4f} [{llem[1]:.4f}, {llem[2]:.4f}]; llem measurement CPU "
        f"{100 * statistics.median(arms['llem@100ms'].cpu_shares):.3f} %"
    )


if __name__ == "__main__":
    main()
