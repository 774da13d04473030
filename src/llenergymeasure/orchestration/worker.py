"""One worker: its share of the prompts, the measured lifecycle, then its three files.

`llem run` runs a one-process experiment through `run_worker` in its own process and
starts several processes with `accelerate launch -m llenergymeasure.orchestration.worker`.
The module is also the entry point on a cluster:

    accelerate launch -m llenergymeasure.orchestration.worker --config X.yaml [--set k=v]
    torchrun --nproc-per-node 4 -m llenergymeasure.orchestration.worker --config X.yaml

Joining an experiment: rank 0 decides and broadcasts the experiment id and the resolved
config, so that every rank runs exactly the same config. Given the `--experiment-id` of
an experiment whose manifest exists (as `llem run` does), the config is the manifest's;
otherwise rank 0 takes that id or allocates one, writes `experiment.json` with the world
size as the expected number of processes, and records how the experiment ended.

Files are written in this order, each atomically: the time-series sidecar, the result
`process_<i>.json`, and last the marker `.completed_<i>` holding the result's sha256.
A worker that fails or is killed before the marker leaves no marker, so aggregation
never counts a result that is not whole.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch
from accelerate import PartialState

from llenergymeasure.config.loader import load_config, validate_config
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.device import visible_gpu_count
from llenergymeasure.core.engines import create_engine
from llenergymeasure.core.lifecycle import MeasuredRun, RunContext, run_measured
from llenergymeasure.core.live_telemetry import TelemetryFn
from llenergymeasure.core.parallel import process_layout
from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.experiment import ExperimentManifest, ExperimentStatus, RawProcessResult
from llenergymeasure.errors import ConfigError, LlemError, ModelNotFound, ResultsError
from llenergymeasure.log import logger
from llenergymeasure.models import llem_cache_dir
from llenergymeasure.models.builtin import ensure_builtin
from llenergymeasure.orchestration.collectives import all_ranks_succeeded, broadcast_json, world_max
from llenergymeasure.orchestration.deployment_checks import check_deployment
from llenergymeasure.orchestration.manifest import (
    claim_experiment,
    failure_line,
    read_manifest,
    set_status,
    write_manifest,
)
from llenergymeasure.orchestration.manifest import record_end as record_manifest_end
from llenergymeasure.orchestration.protocol import (
    ProgressFn,
    progress_printer,
    telemetry_printer,
    worker_log_format,
)
from llenergymeasure.orchestration.signals import raise_on_stop_signals
from llenergymeasure.prompts import Prompt, load_prompts
from llenergymeasure.redaction import redact
from llenergymeasure.results.layout import (
    ResultsLayout,
    manifest_path,
    process_result_path,
    timeseries_path,
    write_marker,
    write_model,
)

MODULE = "llenergymeasure.orchestration.worker"
USER_ERROR = 2


@dataclass(frozen=True)
class JoinedExperiment:
    """The experiment every rank agreed on, and whether this run created it."""

    experiment_id: str
    config: ExperimentConfig
    experiment_dir: Path
    owns_manifest: bool


def main(argv: list[str] | None = None) -> int:
    """Entry point of one worker process; returns its exit code."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    state = PartialState(cpu=visible_gpu_count() == 0)
    configure_logging(state.process_index, args.verbose)
    command = [sys.executable, "-m", MODULE, *argv]
    joined = None
    with raise_on_stop_signals():
        try:
            joined = join_experiment(state, args, command)
            build_models_on_host(state, joined.config.model.name)
            run_worker(
                joined.config,
                joined.experiment_id,
                progress_printer(state.process_index),
                telemetry_printer(state.process_index) if args.telemetry else None,
            )
            finish_experiment(state, joined)
        except LlemError as exc:
            logger.error(str(exc))
            record_end(joined, "failed", failure_line(exc))
            return USER_ERROR
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            logger.warning(
                f"stopped by {signal.Signals(signum).name}; files already written are kept"
            )
            record_end(joined, "interrupted", f"interrupted by {signal.Signals(signum).name}")
            return 128 + signum
        except BaseException as exc:
            record_end(joined, "failed", failure_line(exc))
            raise
    return 0


def run_worker(
    config: ExperimentConfig,
    experiment_id: str,
    progress: ProgressFn | None = None,
    telemetry: TelemetryFn | None = None,
) -> RawProcessResult:
    """Run this process's part of the experiment and write its files.

    `progress` hears of each phase's (done, total); `telemetry` receives the energy
    window's live figures about once a second (`core/live_telemetry.py`).
    """
    state = PartialState(cpu=visible_gpu_count() == 0)
    if state.device.type == "cpu":
        torch.set_num_threads(cpu_threads_per_process(state.num_processes))
        logger.debug(f"{torch.get_num_threads()} torch threads")
    experiment_dir = ResultsLayout(config.results_dir).experiment_dir(experiment_id)
    layout = process_layout(
        config.parallel, state.process_index, state.local_process_index, str(state.device)
    )
    placement = layout.placement
    prompts = load_prompts(config.prompts)
    prompts = shard_prompts(prompts, placement.data_group, placement.data_groups)
    logger.info(
        f"{len(prompts)} prompts on {layout.device} (data group {placement.data_group}, "
        f"tensor rank {placement.tensor_rank} of {placement.tensor_size})"
    )
    context = RunContext(
        experiment_id=experiment_id,
        process_index=state.process_index,
        num_processes=state.num_processes,
        barrier=state.wait_for_everyone,
        progress=progress,
        baseline_cache_path=llem_cache_dir() / "baseline.json",
        telemetry=telemetry,
        placement=placement,
        group_max=world_max(state) if placement.tensor_size > 1 else None,
    )
    run = run_measured(create_engine(config, layout.device, layout), config, context, prompts)
    return write_process_outputs(experiment_dir, run, config)


def shard_prompts(prompts: list[Prompt], index: int, count: int) -> list[Prompt]:
    """Prompt k goes to data group k mod count: disjoint, complete, and balanced in mix.

    Every rank loads the same prompt list (a shuffle is seeded), so the shards of
    groups 0..count-1 together are exactly that list; their sizes differ by at most one.
    The ranks of a tensor-parallel group run their group's shard together.
    """
    return prompts[index::count]


def cpu_threads_per_process(num_processes: int) -> int:
    """Threads for one CPU worker: the host's cores split between its processes.

    `LOCAL_WORLD_SIZE` (set by torchrun and `accelerate launch`) counts the processes
    on this host; on several hosts it is smaller than the world size.
    """
    local = int(os.environ.get("LOCAL_WORLD_SIZE", num_processes))
    return max(1, (psutil.cpu_count(logical=True) or 1) // max(1, local))


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


def join_experiment(
    state: PartialState, args: argparse.Namespace, command: list[str]
) -> JoinedExperiment:
    """Agree on one experiment: rank 0 decides, every rank receives its decision.

    Raises:
        LlemError: rank 0 could not open or create the experiment (on every rank).

    """
    decision: dict[str, Any] | None = None
    if state.is_main_process:
        try:
            decision = decide_experiment(args, state.num_processes, command)
        except LlemError as exc:
            broadcast_json(state, {"error": str(exc)})
            raise
    decision = broadcast_json(state, decision)
    if "error" in decision:
        raise LlemError(f"rank 0 could not start the experiment: {decision['error']}")
    experiment_id = decision["experiment_id"]
    config = validate_config(decision["config"], source=f"manifest of {experiment_id}")
    experiment_dir = ResultsLayout(config.results_dir).experiment_dir(experiment_id)
    return JoinedExperiment(experiment_id, config, experiment_dir, decision["owns_manifest"])


def decide_experiment(
    args: argparse.Namespace, world_size: int, command: list[str]
) -> dict[str, Any]:
    """Rank 0: open the experiment `llem run` created, or create one.

    Returns:
        `experiment_id`, `config` (resolved, as JSON data) and `owns_manifest`: plain
        data, so that it can be broadcast.

    """
    config = load_config(args.config, args.overrides)
    layout = ResultsLayout(config.results_dir)
    experiment_id = args.experiment_id
    if experiment_id is not None and manifest_path(layout.experiment_dir(experiment_id)).exists():
        manifest = open_experiment(layout.experiment_dir(experiment_id), world_size)
        return {"experiment_id": experiment_id, "config": manifest.config, "owns_manifest": False}
    if config.processes != world_size:
        logger.info(f"processes: {world_size}, the world size (the config says {config.processes})")
        try:
            config = config.with_processes(world_size)
        except ValueError as exc:
            raise ConfigError(f"parallel.tensor: {exc}") from None
    check_deployment(config, visible_gpu_count())
    experiment_id, experiment_dir = claim_experiment(layout, config.name, experiment_id)
    write_manifest(experiment_dir, experiment_id, config, world_size, command)
    logger.info(f"experiment {experiment_id} in {experiment_dir}")
    return {
        "experiment_id": experiment_id,
        "config": config.model_dump(mode="json"),
        "owns_manifest": True,
    }


def open_experiment(experiment_dir: Path, world_size: int) -> ExperimentManifest:
    """The manifest of a fresh experiment made for exactly this many processes.

    Raises:
        ConfigError: the manifest expects another number of processes.
        ResultsError: the experiment has ended or holds results (never overwritten).

    """
    manifest = read_manifest(experiment_dir)
    if manifest.expected_num_processes != world_size:
        raise ConfigError(
            f"{manifest_path(experiment_dir)} expects {manifest.expected_num_processes} "
            f"processes but {world_size} were started"
        )
    written = sorted(p.name for p in experiment_dir.glob("process_*.json"))
    if manifest.status != "running" or written:
        raise ResultsError(
            f"{experiment_dir} is {manifest.status}"
            + (f" and holds {', '.join(written)}" if written else "")
            + "; its results are kept: start a new experiment id"
        )
    return manifest


def build_models_on_host(state: PartialState, model_name: str) -> None:
    """Local rank 0 of each host builds a builtin model; the host's other ranks wait.

    The model cache is per host. The ranks agree on the outcome (an all-reduce, which is
    also the barrier), so a build that fails stops every rank with an error instead of
    leaving the others waiting. Inside the process group the build itself runs in a
    child process (`models.builtin`), never in the group.

    Raises:
        ModelNotFound: the build failed on this host or another one.

    """
    error = None
    if state.local_process_index == 0:
        try:
            ensure_builtin(model_name)
        except LlemError as exc:
            error = str(exc)
    if not all_ranks_succeeded(state, error is None):
        raise ModelNotFound(error or f"building {model_name} failed on another host; see its log")


def finish_experiment(state: PartialState, joined: JoinedExperiment) -> None:
    """Once every rank is done, the creator of the manifest marks it completed."""
    state.wait_for_everyone()
    if joined.owns_manifest and state.is_main_process:
        set_status(joined.experiment_dir, "completed")
        logger.info(
            f"every process is done ({state.num_processes}); aggregate with: "
            f"llem aggregate {joined.experiment_dir}"
        )


def record_end(
    joined: JoinedExperiment | None, status: ExperimentStatus, error: str | None = None
) -> None:
    """Record how the run ended in a manifest it created (`llem run` records its own)."""
    if joined is not None and joined.owns_manifest:
        record_manifest_end(joined.experiment_dir, status, error)


def configure_logging(rank: int, verbose: bool) -> None:
    """Log lines on stderr (one write each), with the rank and tokens masked; transformers quiet."""
    from transformers.utils import logging as hf_logging

    logger.remove()
    logger.enable("llenergymeasure")
    logger.add(
        lambda message: sys.stderr.write(redact(message)),
        level="DEBUG" if verbose else "INFO",
        format=worker_log_format(rank),
        colorize=False,
    )
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """`--config FILE [--set k=v ...] [--experiment-id ID] [--telemetry] [--verbose]`."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}",
        description="One llem worker; start several with accelerate launch or torchrun.",
    )
    parser.add_argument("--config", type=Path, required=True, help="Experiment YAML file.")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="dotted.path=value"
    )
    parser.add_argument(
        "--experiment-id",
        help="Join this experiment (its manifest gives the config) or create it with this id.",
    )
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="Print the energy window's live figures about once a second (for the launcher).",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="Debug logging.")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
