"""Defaults that are not written on a config field, each in one place.

The config's own defaults are its pydantic fields (`config/`); `llem config
show` prints them resolved. The numbers here are the ones applied where a field is null
or that belong to no experiment (the analysis commands); the field descriptions, the
CLI help and `llem config show` are generated from them. Importing this module costs
nothing, so the CLI reads it before any command runs.
"""

from __future__ import annotations

from pathlib import Path

# Where experiments are written (`results_dir`) and read (`--results-dir`).
RESULTS_DIR = Path("results")

# The sampler's period: `measurement.energy.sample_interval_ms` and the Python API's
# windows (`llem.measure`, `llem.EnergyMonitor`, `RankResults.measure`).
SAMPLE_INTERVAL_MS = 100

# Bootstrap resamples of `llem results compare` and `llem plot campaign`.
BOOTSTRAP_RESAMPLES = 10_000
# Seed of the bootstrap's generator.
BOOTSTRAP_SEED = 0

# `measurement.thermal_floor.seconds: null` in sleep mode: this on a GPU, 0 on the CPU.
GPU_THERMAL_FLOOR_S = 60.0

# The CPU estimate of a CPU model missing from the table (`measurement.energy.cpu_tdp_w:
# null`): a mid-range server socket, 3.1 W per hardware thread, close to the median of
# the table's server parts (3.07 W per thread; `core/energy_backends/cpu_tdp.py`).
DEFAULT_SOCKET_TDP_W = 150.0
DEFAULT_THREADS_PER_SOCKET = 48
