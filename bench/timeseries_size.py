"""Bytes per sample of the time-series files for a one-hour run at 100 ms on one GPU.

Synthesises realistic, varying readings (power with load bursts and noise at NVML's
1 mW resolution, temperature climbing in whole degrees, memory in 2 MiB steps, SM
utilisation in whole percent, occasional power-cap throttling), then writes the
parquet sidecar (1 Hz default and raw) and the JSON export, and prints their sizes.

    .venv/bin/python bench/timeseries_size.py
"""

from __future__ import annotations

import math
import platform
import random
import tempfile
from pathlib import Path

from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.results.timeseries import (
    export_timeseries,
    load_timeseries,
    read_sidecar_samples,
)

DURATION_S = 3600
INTERVAL_MS = 100
START_S = 5000.0
SW_POWER_CAP = 0x4


def synthesise(seed: int = 0) -> list[PowerThermalSample]:
    rng = random.Random(seed)
    samples = []
    count = DURATION_S * 1000 // INTERVAL_MS
    for k in range(count):
        t = k * INTERVAL_MS / 1000
        busy = (t % 40) < 34  # a batch every 40 s, 6 s of gaps between
        power = (285 + 35 * math.sin(t / 7) if busy else 95) + rng.gauss(0, 8)
        temperature = round(44 + 34 * (1 - math.exp(-t / 600)) + rng.gauss(0, 0.6))
        memory_mib = 2 * round((20_480 + (6_000 * (t % 40) / 40 if busy else 0)) / 2)
        throttled = busy and 1800 < t < 2400 and rng.random() < 0.3
        samples.append(
            PowerThermalSample(
                t_s=START_S + t + rng.gauss(0, 0.0005),
                device_index=0,
                power_w=round(max(power, 20.0), 3),
                temperature_c=float(temperature),
                memory_used_mb=float(memory_mib),
                memory_total_mb=81_559.0,
                sm_utilisation_pct=float(min(100, round(rng.gauss(97, 3)))) if busy else 0.0,
                throttle_reasons=SW_POWER_CAP if throttled else 0,
            )
        )
    return samples


def main() -> None:
    samples = synthesise()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = {
            "parquet, 1 Hz (default)": write_timeseries_parquet(
                samples, folder / "hz1.parquet", start_s=START_S
            ),
            "parquet, raw (resample_hz: 0)": write_timeseries_parquet(
                samples, folder / "raw.parquet", start_s=START_S, resample_hz=0
            ),
            "JSON, raw samples": export_timeseries(
                samples, "bench", 0, folder / "json_raw", INTERVAL_MS, start_s=START_S
            ),
            "JSON, from the 1 Hz sidecar": export_timeseries(
                read_sidecar_samples(folder / "hz1.parquet"), "bench", 1, folder, 1000, start_s=0.0
            ),
        }
        print(f"{len(samples)} samples ({DURATION_S} s at {INTERVAL_MS} ms), one GPU")
        print(f"{platform.machine()} {platform.system()}, Python {platform.python_version()}")
        print(f"{'file':<32}{'bytes':>12}{'B/sample':>10}{'rows':>8}{'B/row':>8}")
        for name, path in sizes.items():
            size = path.stat().st_size
            rows = _rows(path)
            print(f"{name:<32}{size:>12,}{size / len(samples):>10.2f}{rows:>8}{size / rows:>8.2f}")


def _rows(path: Path) -> int:
    if path.suffix == ".parquet":
        return len(read_sidecar_samples(path))
    return load_timeseries(path)["sample_count"]


if __name__ == "__main__":
    main()
