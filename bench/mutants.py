"""The realistic bugs `bench/mutation.py` injects, each with the tests that must catch it.

A mutant is one or more exact edits of the source (the snippet must occur exactly once in
its file) and the pytest selection that covers it. Add one whenever a bug is found that
the tests missed, together with the test that now catches it. `survives` names the
reason when a mutant is knowingly left alive.
"""

from __future__ import annotations

from dataclasses import dataclass

SRC = "src/llenergymeasure/"


@dataclass(frozen=True)
class Edit:
    """Replace `old` (found exactly once in `path`) by `new`."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    """A bug, how to inject it, and the tests that should fail on it."""

    name: str
    bug: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]
    survives: str = ""


def mutant(name: str, bug: str, path: str, old: str, new: str, *tests: str) -> Mutant:
    """A mutant of one edit in `src/llenergymeasure/<path>`."""
    return Mutant(name, bug, (Edit(SRC + path, old, new),), tests)


FILEIO = "tests/unit/test_fileio.py"
EXPORTS = "tests/unit/results/test_csv_columns.py"
TIMESERIES = "tests/unit/core/test_timeseries_parquet.py"

MUTANTS: list[Mutant] = [
    mutant(
        "fileio-no-fsync",
        "the temporary file is not fsynced before os.replace",
        "fileio.py",
        "        _fsync_file(tmp)\n        os.replace(tmp, path)",
        "        os.replace(tmp, path)",
        FILEIO,
    ),
    mutant(
        "fileio-direct-write",
        "atomic_write_bytes writes the target in place",
        "fileio.py",
        '    with atomic_target(path) as tmp:\n        with open(tmp, "wb") as fh:',
        "    path.parent.mkdir(parents=True, exist_ok=True)\n    if True:\n"
        '        with open(path, "wb") as fh:',
        FILEIO,
    ),
    mutant(
        "csv-ttft-p95-from-p50",
        "latency_ttft_p95_ms exported from the p50",
        "results/exporters.py",
        '"latency_ttft_p95_ms": "latency.ttft_p95_ms"',
        '"latency_ttft_p95_ms": "latency.ttft_p50_ms"',
        EXPORTS,
    ),
    mutant(
        "csv-baseline-from-spread",
        "energy_baseline_w exported from the baseline's standard deviation",
        "results/exporters.py",
        '"energy_baseline_w": "energy_breakdown.baseline_power_w"',
        '"energy_baseline_w": "energy_breakdown.baseline_std_w"',
        EXPORTS,
    ),
    mutant(
        "csv-e2e-mean-from-p95",
        "latency_e2e_mean_ms exported from the p95",
        "results/exporters.py",
        '"latency_e2e_mean_ms": "latency.e2e_mean_ms"',
        '"latency_e2e_mean_ms": "latency.e2e_p95_ms"',
        EXPORTS,
    ),
    mutant(
        "csv-adjusted-from-raw",
        "energy_adjusted_j exported from the raw energy",
        "results/exporters.py",
        '"energy_adjusted_j": "energy_breakdown.adjusted_j"',
        '"energy_adjusted_j": "energy_breakdown.raw_j"',
        EXPORTS,
    ),
    mutant(
        "csv-raw-duration-from-start",
        "the per-process inference_duration_s exported from the window end",
        "results/exporters.py",
        '"inference_duration_s": "inference_duration_s"',
        '"inference_duration_s": "inference_end_unix_s"',
        EXPORTS,
    ),
    mutant(
        "timeseries-bucket-not-divided",
        "1 Hz bucket timestamps not divided by resample_hz",
        "core/timeseries.py",
        '"timestamp_s": bucket / resample_hz',
        '"timestamp_s": float(bucket)',
        TIMESERIES,
    ),
]
