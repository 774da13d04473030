"""One worker: its share of the prompts, the measured lifecycle, then its three files.

Files are written in this order, each atomically: the time-series sidecar, the result
`process_<i>.json`, and last the marker `.completed_<i>` holding the result's sha256.
A worker that fails or is killed before the marker leaves no marker, so aggregation
never counts a result that is not whole.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil
import torch
from loguru import logger

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.backends.pytorch import MeasuredRun, PyTorchBackend, RunContext
from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.models import llem_cache_dir
from llenergymeasure.prompts import Prompt, load_prompts
from llenergymeasure.results.layout import (
    ResultsLayout,
    process_result_path,
    timeseries_path,
    write_marker,
    write_model,
)

ProgressFn = Callable[[str, int, int], None]


def shard_prompts(prompts: list[Prompt], index: int, count: int) -> list[Prompt]:
    """Prompt k goes to process k mod count: disjoint, complete, and balanced in mix."""
    return prompts[index::count]


def run_worker(
    config: ExperimentConfig, experiment_id: str, progress: ProgressFn | None = None
) -> RawProcessResult:
    """Run this process's part of the experiment and write its files."""
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.device.type == "cpu":
        torch.set_num_threads(max(1, (psutil.cpu_count(logical=True) or 1) // state.num_processes))
    experiment_dir = ResultsLayout(config.results_dir).experiment_dir(experiment_id)
    prompts = shard_prompts(load_prompts(config.prompts), state.process_index, state.num_processes)
    logger.info(f"[rank {state.process_index}] {len(prompts)} prompts on {state.device}")
    context = RunContext(
        experiment_id=experiment_id,
        process_index=state.process_index,
        num_processes=state.num_processes,
        device=str(state.device),
        barrier=state.wait_for_everyone,
        progress=progress,
        baseline_cache_path=llem_cache_dir() / "baseline.json",
    )
    run = PyTorchBackend(config, context).run(prompts)
    return write_process_outputs(experiment_dir, run, config)


def write_process_outputs(
    experiment_dir: Path, run: MeasuredRun, config: ExperimentConfig
) -> RawProcessResult:
    """Sidecar, then result, then marker (last)."""
    result = run.result
    index = result.process_index
    series = config.measurement.timeseries
    if series.enabled:
        path = write_timeseries_parquet(
            run.samples,
            timeseries_path(experiment_dir, index),
            start_s=run.window_start_mono_s,
            resample_hz=series.resample_hz,
        )
        result = result.model_copy(update={"timeseries_path": path.name})
    data = write_model(process_result_path(experiment_dir, index), result)
    write_marker(experiment_dir, index, data)
    return result
