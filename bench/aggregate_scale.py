"""Aggregation at scale: `llem aggregate` on synthetic experiments of 1 to 2,048 processes.

Each process has 100 requests and 10,000 latency samples (100 TTFT, 9,800 ITL, 100
end-to-end), GPU energy from a counter, and a one-hour 1 Hz time-series sidecar. Every
size is aggregated by the real command in a fresh process under `/usr/bin/time`, which
gives the wall time and the peak memory. The growth exponent is the slope of
log(time) against log(processes) over the two largest sizes. Target: 2,048 processes in
under 5 s, and linear growth.

    .venv/bin/python bench/aggregate_scale.py [--sizes 1 8 64 512 2048]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import orjson

from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.experiment import ExperimentManifest, RawProcessResult, RequestRecord
from llenergymeasure.domain.metrics import (
    DeviceEnergy,
    EnergyBreakdown,
    EnergyMeasurement,
    LatencySamples,
)
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.results.layout import (
    ResultsLayout,
    manifest_path,
    process_result_path,
    timeseries_path,
    write_marker,
    write_model,
)

NOW = datetime(2026, 11, 22, tzinfo=timezone.utc)
REQUESTS = 100
ITL_SAMPLES = 10_000 - 2 * REQUESTS


def one_hour_series(index: int) -> list[PowerThermalSample]:
    return [
        PowerThermalSample(
            t_s=float(t),
            device_index=0,
            power_w=300.0 + (t + index) % 50,
            temperature_c=60.0,
            memory_used_mb=40_000.0,
            memory_total_mb=81_559.0,
            sm_utilisation_pct=95.0,
            throttle_reasons=0,
        )
        for t in range(3600)
    ]


def process_result(
    experiment_id: str, index: int, count: int, rng: random.Random
) -> RawProcessResult:
    start, duration = 1_800_000_000.0, 3600.0
    energy = EnergyMeasurement(
        method="nvml_counter",
        host=f"node{index // 8}",
        devices=[
            DeviceEnergy(device_id=f"GPU-{index % 8}", kind="gpu", scope="device", energy_j=1e6)
        ],
        window_start_unix_s=start,
        window_end_unix_s=start + duration,
        duration_s=duration,
    )
    return RawProcessResult(
        experiment_id=experiment_id,
        process_index=index,
        num_processes=count,
        host=f"node{index // 8}",
        pid=1000 + index,
        config_name="scale",
        model_name="synthetic",
        started_at=NOW,
        ended_at=NOW,
        inference_start_unix_s=start,
        inference_end_unix_s=start + duration,
        inference_duration_s=duration,
        num_requests=REQUESTS,
        input_tokens=REQUESTS * 500,
        output_tokens=REQUESTS * 100,
        tokens_per_second=REQUESTS * 100 / duration,
        requests=[
            RequestRecord(
                prompt_id=f"p{k}", input_tokens=500, output_tokens=100, stopped_by_eos=True
            )
            for k in range(REQUESTS)
        ],
        energy_method="nvml_counter",
        energy=energy,
        energy_breakdown=EnergyBreakdown(
            raw_j=1e6,
            adjusted_j=8e5,
            baseline_power_w=60.0,
            baseline_method="cached",
            inference_duration_s=duration,
        ),
        latency_samples=LatencySamples(
            ttft_ms=[rng.uniform(50, 500) for _ in range(REQUESTS)],
            itl_ms=[rng.uniform(10, 40) for _ in range(ITL_SAMPLES)],
            e2e_ms=[rng.uniform(2000, 6000) for _ in range(REQUESTS)],
        ),
        timeseries_path=f"process_{index}_timeseries.parquet",
    )


def write_experiment(root: Path, count: int) -> Path:
    experiment_id = f"scale-{count}_20261122T000000_0000"
    experiment_dir = ResultsLayout(root).experiment_dir(experiment_id)
    experiment_dir.mkdir(parents=True)
    write_model(
        manifest_path(experiment_dir),
        ExperimentManifest(
            experiment_id=experiment_id,
            config={},
            config_hash="synthetic",
            expected_num_processes=count,
            created_at=NOW,
            status="completed",
        ),
    )
    rng = random.Random(count)
    series_file = experiment_dir / "series.parquet"
    write_timeseries_parquet(one_hour_series(0), series_file, start_s=0.0)
    for index in range(count):
        shutil.copyfile(series_file, timeseries_path(experiment_dir, index))
        data = write_model(
            process_result_path(experiment_dir, index),
            process_result(experiment_id, index, count, rng),
        )
        write_marker(experiment_dir, index, data)
    series_file.unlink()
    return experiment_dir


def aggregate(experiment_dir: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of `llem aggregate` in a fresh process."""
    proc = subprocess.run(
        [
            "/usr/bin/time",
            "-f",
            "LLEM_TIME %e %M",
            sys.executable,
            "-m",
            "llenergymeasure",
            "aggregate",
            str(experiment_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"llem aggregate failed: {proc.stderr.strip().splitlines()[-2:]}")
    line = next(x for x in proc.stderr.splitlines() if x.startswith("LLEM_TIME"))
    _, wall, peak_kb = line.split()
    return float(wall), int(peak_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 64, 512, 2048])
    parser.add_argument("--out", type=Path, default=Path("results/bench/aggregate_scale.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="llem-scale-") as tmp:
        print(f"{'processes':>9} {'result MB':>10} {'wall s':>8} {'peak MB':>8}")
        for count in args.sizes:
            experiment_dir = write_experiment(Path(tmp), count)
            size_mb = sum(p.stat().st_size for p in experiment_dir.glob("process_*.json")) / 2**20
            wall_s, peak_mb = aggregate(experiment_dir)
            rows.append(
                {"processes": count, "results_mb": size_mb, "wall_s": wall_s, "peak_mb": peak_mb}
            )
            print(f"{count:>9} {size_mb:>10.1f} {wall_s:>8.2f} {peak_mb:>8.0f}")
            shutil.rmtree(experiment_dir)
    # The slope over the two largest sizes, where the fixed start-up cost no longer hides it.
    exponent = None
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        exponent = math.log(b["wall_s"] / a["wall_s"]) / math.log(b["processes"] / a["processes"])
    last = rows[-1]
    print(
        f"headline: {last['processes']} processes aggregated in {last['wall_s']:.2f} s "
        f"(target < 5 s), peak {last['peak_mb']:.0f} MB, growth exponent "
        f"{exponent if exponent is None else round(exponent, 2)} (target ~1)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(
        orjson.dumps(
            {
                "date": datetime.now(timezone.utc).isoformat(),
                "machine": f"{platform.node()} {platform.machine()} x{os.cpu_count()}",
                "rows": rows,
                "growth_exponent": exponent,
            },
            option=orjson.OPT_INDENT_2,
        )
    )


if __name__ == "__main__":
    main()
