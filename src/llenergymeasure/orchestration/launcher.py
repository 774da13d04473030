"""`llem run`: allocate the experiment, run its worker(s), aggregate.

One process runs here, through the worker's own `run_worker`. Several processes are
started by `accelerate launch -m llenergymeasure.orchestration.worker` (docs/design.md
section 1): one per GPU, or on the CPU as many gloo processes. `accelerate launch
--cpu` would start only one, so the multi-GPU form is used on the CPU too; the worker
picks gloo and the CPU itself. The manifest, with the launch command and the expected
number of processes, is written before anything starts, and the workers take their
config from it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.domain.experiment import AggregatedResult
from llenergymeasure.errors import ConfigError, Interrupted, PromptsError, WorkerFailed
from llenergymeasure.log import logger
from llenergymeasure.models.builtin import ensure_builtin
from llenergymeasure.orchestration import failures, preflight
from llenergymeasure.orchestration.deployment_checks import check_deployment
from llenergymeasure.orchestration.live_metrics import LiveMetrics
from llenergymeasure.orchestration.manifest import (
    claim_experiment,
    failure_line,
    record_end,
    set_status,
    write_manifest,
)
from llenergymeasure.orchestration.protocol import (
    ProgressCondenser,
    ProgressFn,
    TelemetryUpdate,
    is_log_line,
    parse_progress,
    parse_telemetry,
)
from llenergymeasure.orchestration.signals import (
    exit_on_second_signal,
    forward_stop_signals,
    raise_on_stop_signals,
    signal_group,
)
from llenergymeasure.prompts import load_prompts
from llenergymeasure.redaction import redact
from llenergymeasure.results.aggregation import aggregate_experiment
from llenergymeasure.results.layout import ResultsLayout

OutputFn = Callable[[str], None]
UpdateFn = Callable[[TelemetryUpdate], None]
WORKER_MODULE = "llenergymeasure.orchestration.worker"
# Without a config file: the multi-GPU launcher, which also starts N processes on the CPU.
DEFAULT_LAUNCH_FLAGS = ("--multi_gpu", "--num_machines", "1", "--mixed_precision", "no")
DEFAULT_LAUNCH_FLAGS += ("--dynamo_backend", "no")
KEPT_OUTPUT_LINES = 200
FAILURE_CONTEXT_LINES = 40
STOP_GRACE_S = 30.0
# Stands for the experiment id in a planned command; the run draws the real one.
PLANNED_ID = "<new-experiment-id>"


@dataclass(frozen=True)
class ConfigSource:
    """The config file and `--set` overrides that workers are started with."""

    path: Path
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class LaunchOptions:
    """How several processes are started."""

    source: ConfigSource | None = None
    accelerate_config: Path | None = None
    verbose: bool = False


@dataclass(frozen=True)
class ExperimentOutcome:
    """Where a finished experiment's files are and what it measured."""

    experiment_id: str
    experiment_dir: Path
    aggregated: AggregatedResult
    aggregated_path: Path


def run_experiment(
    config: ExperimentConfig,
    *,
    launch: LaunchOptions = LaunchOptions(),
    launch_command: list[str] | None = None,
    progress: ProgressFn | None = None,
    output: OutputFn | None = None,
    experiment_id: str | None = None,
    live: LiveMetrics | None = None,
) -> ExperimentOutcome:
    """Run one experiment end to end and return its aggregate.

    Args:
        config: the resolved experiment config.
        launch: config file and accelerate options for several processes.
        launch_command: how the user started a one-process run (recorded).
        progress: called with (phase, done, total), summed over processes.
        output: receives the workers' log lines (default: stderr).
        experiment_id: the id to create (a campaign records it before the run);
            default: a fresh one.
        live: the metrics server's figures, fed with this experiment's progress and
            the workers' telemetry (`live_metrics`); None: no telemetry is gathered.

    The manifest is written before any measurement and its status updated at the end
    (`completed`, `failed` or `interrupted`); results already written are never removed.
    SIGINT and SIGTERM stop the run (`signals`): its workers stop, and no marker is
    written for work they did not finish.

    Raises:
        WorkerFailed: a worker failed; the message names its rank and exit status.
        Interrupted: SIGINT or SIGTERM stopped the run; the message names the experiment.

    """
    from llenergymeasure.orchestration.worker import run_worker

    check_experiment(config, launch)
    layout = ResultsLayout(config.results_dir)
    with raise_on_stop_signals():
        ensure_builtin(config.model.name)  # before any worker starts (models/builtin.py)
        experiment_id, experiment_dir = claim_experiment(layout, config.name, experiment_id)
        command = worker_command(config, launch, experiment_id, telemetry=live is not None)
        if live is not None:
            live.experiment_started(experiment_id)
            progress = _also_to(live, progress)
        write_manifest(
            experiment_dir, experiment_id, config, config.processes, command or launch_command
        )
        try:
            if command is None:
                with exit_on_second_signal(_record_forced_stop(experiment_dir)):
                    telemetry = None if live is None else live.rank_telemetry(0)
                    run_worker(config, experiment_id, progress, telemetry)
            else:
                run_workers(
                    command,
                    config.processes,
                    experiment_dir,
                    progress=progress,
                    output=output or _to_stderr,
                    verbose=launch.verbose,
                    telemetry=None if live is None else live.telemetry,
                )
            aggregated, path = aggregate_experiment(layout, experiment_id)
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            record_end(
                experiment_dir, "interrupted", f"interrupted by {signal.Signals(signum).name}"
            )
            raise Interrupted(
                signum,
                f"{experiment_dir} is marked interrupted; the files already written are kept",
            ) from None
        except BaseException as exc:
            record_end(experiment_dir, "failed", failure_line(exc))
            raise
        set_status(experiment_dir, "completed")
    return ExperimentOutcome(experiment_id, experiment_dir, aggregated, path)


def plan_experiment(config: ExperimentConfig, launch: LaunchOptions) -> list[str] | None:
    """What `run_experiment` would start, after the same checks; writes nothing.

    Returns:
        The `accelerate launch` command, or None when the experiment runs in this
        process. Its experiment id is `PLANNED_ID`: the real one is drawn when the run
        creates its directory.

    """
    check_experiment(config, launch)
    return worker_command(config, launch, PLANNED_ID)


def check_experiment(config: ExperimentConfig, launch: LaunchOptions) -> None:
    """Refuse, before anything is written, what cannot run; name the field.

    With `load.endpoint` the model is the server's (its name need not be one here) and
    the server tokenises: neither is checked on this host.
    """
    from llenergymeasure.core.device import visible_gpu_count

    endpoint = config.load.endpoint is not None
    if not endpoint:
        preflight.check_model(config)
    gpus = visible_gpu_count()
    needs_gpus = config.measurement.energy.backend == "nvml"
    preflight.check_energy_backend(config, gpus if needs_gpus else 0)
    check_deployment(config, gpus)
    preflight.check_attention(config, gpus)
    if launch.accelerate_config is not None:
        preflight.check_accelerate_config(launch.accelerate_config)
    try:
        prompts = load_prompts(config.prompts)
    except PromptsError as exc:
        raise ConfigError(f"prompts.source: {exc}") from None
    if not endpoint:
        preflight.check_prompt_lengths(config, prompts)
    preflight.check_batch_budget(config, prompts)
    num_prompts = len(prompts)
    if config.processes == 1:
        return
    if launch.source is None:
        raise ConfigError(
            f"processes: {config.processes}: several processes need the config file "
            "they are started with (llem run CONFIG)"
        )
    if config.processes > num_prompts:
        raise ConfigError(
            f"processes: {config.processes} exceeds the {num_prompts} prompts; "
            "some processes would have nothing to run"
        )
    if gpus and config.processes > gpus:
        raise ConfigError(
            f"processes: {config.processes}, but {gpus} GPU(s) are visible; "
            "llem runs one process per GPU"
        )


def worker_command(
    config: ExperimentConfig, launch: LaunchOptions, experiment_id: str, *, telemetry: bool = False
) -> list[str] | None:
    """The `accelerate launch` command for several processes; None for one.

    With an accelerate config file (`launch/`), the file says how to launch and the
    experiment says how many processes; without one, the multi-GPU launcher is used,
    which on the CPU really starts every process (`--cpu` would start one). With
    `telemetry`, the workers print their live figures (`protocol`).
    """
    if config.processes == 1:
        return None
    assert launch.source is not None  # check_experiment refused this
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if launch.accelerate_config is not None:
        command += ["--config_file", str(launch.accelerate_config)]
    else:
        command += DEFAULT_LAUNCH_FLAGS
    command += ["--num_processes", str(config.processes)]
    command += ["--main_process_port", str(free_port())]
    command += ["-m", WORKER_MODULE, "--config", str(launch.source.path)]
    for override in launch.source.overrides:
        command += ["--set", override]
    command += ["--experiment-id", experiment_id]
    command += ["--telemetry"] if telemetry else []
    return command + (["--verbose"] if launch.verbose else [])


def free_port() -> int:
    """A TCP port free on this host now, for the processes' rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_workers(
    command: Sequence[str],
    num_processes: int,
    experiment_dir: Path,
    *,
    progress: ProgressFn | None,
    output: OutputFn,
    verbose: bool,
    telemetry: UpdateFn | None = None,
) -> None:
    """Start the workers, stream their progress, telemetry and logs, wait for all of them.

    Other output (of accelerate, torch.distributed, a traceback) is logged at debug
    level; after a failure, the workers' part of it is shown. The launch runs in a
    process group of its own, to which SIGINT and SIGTERM are forwarded (`signals`).

    Raises:
        WorkerFailed: the launch ended with a non-zero status.
        Interrupted: SIGINT or SIGTERM stopped the workers.

    """
    logger.debug(f"launching: {' '.join(command)}")
    condenser = ProgressCondenser(progress, num_processes) if progress else None
    kept: deque[str] = deque(maxlen=KEPT_OUTPUT_LINES)
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=worker_environment(num_processes),
        start_new_session=True,
    ) as proc:
        try:
            with forward_stop_signals(proc, STOP_GRACE_S) as stop:
                assert proc.stdout is not None
                for line in proc.stdout:
                    route_line(redact(line.rstrip("\n")), condenser, output, kept, telemetry)
                code = proc.wait()
        except BaseException:
            signal_group(proc, signal.SIGTERM)  # they would run on unseen otherwise
            raise
    if stop.signum is not None:
        raise Interrupted(stop.signum)
    if code != 0:
        if not verbose:
            for line in failures.before_agent_report(list(kept))[-FAILURE_CONTEXT_LINES:]:
                output(line)
        what = failures.describe(code, "\n".join(kept))
        raise WorkerFailed(
            f"{what}; the experiment is marked failed and not aggregated: {experiment_dir}"
        )


def route_line(
    line: str,
    condenser: ProgressCondenser | None,
    output: OutputFn,
    kept: deque[str],
    telemetry: UpdateFn | None = None,
) -> None:
    """Progress to the bars, telemetry to the metrics, log lines to the user, the rest kept."""
    update = parse_progress(line)
    if update is not None:
        logger.debug(line)
        if condenser is not None:
            condenser.update(update)
    elif (figures := parse_telemetry(line)) is not None:
        if telemetry is not None:
            telemetry(figures)
    elif is_log_line(line):
        output(line)
    elif line.strip():
        logger.debug(line)
        kept.append(line)


def worker_environment(num_processes: int) -> dict[str, str]:
    """The workers' environment: output unbuffered (progress streams), cores split.

    torchrun would set OMP_NUM_THREADS to 1 where it is unset; the host's cores split
    between the processes is what the workers use (a value set by the user is kept).
    """
    threads = max(1, (os.cpu_count() or 1) // num_processes)
    return {"OMP_NUM_THREADS": str(threads), **os.environ, "PYTHONUNBUFFERED": "1"}


def _also_to(live: LiveMetrics, progress: ProgressFn | None) -> ProgressFn:
    """Progress to the live metrics, and to `progress` where there is one."""

    def report(phase: str, done: int, total: int) -> None:
        live.progress(phase, done, total)
        if progress is not None:
            progress(phase, done, total)

    return report


def _record_forced_stop(experiment_dir: Path) -> Callable[[int], None]:
    """What a second signal does before the process ends: mark the experiment, say so."""

    def record(signum: int) -> None:
        name = signal.Signals(signum).name
        record_end(experiment_dir, "interrupted", f"interrupted by {name} (a second signal)")
        logger.warning(
            f"interrupted by a second {name}: {experiment_dir} is marked interrupted; "
            "the files already written are kept"
        )

    return record


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
