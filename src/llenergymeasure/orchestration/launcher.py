"""`llem run`: allocate the experiment, run its worker(s), aggregate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.domain.experiment import AggregatedResult
from llenergymeasure.errors import ConfigError, PromptsError
from llenergymeasure.orchestration.ids import new_experiment_id
from llenergymeasure.orchestration.manifest import set_status, write_manifest
from llenergymeasure.orchestration.worker import run_worker
from llenergymeasure.prompts import load_prompts
from llenergymeasure.results.aggregation import aggregate_experiment
from llenergymeasure.results.layout import ResultsLayout

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExperimentOutcome:
    """Where a finished experiment's files are and what it measured."""

    experiment_id: str
    experiment_dir: Path
    aggregated: AggregatedResult
    aggregated_path: Path


def check_prompts(config: ExperimentConfig) -> None:
    """Fail on a bad prompt source before anything is written, naming the field."""
    try:
        load_prompts(config.prompts)
    except PromptsError as exc:
        raise ConfigError(f"prompts.source: {exc}") from None


def run_experiment(
    config: ExperimentConfig,
    *,
    launch_command: list[str] | None = None,
    progress: ProgressFn | None = None,
) -> ExperimentOutcome:
    """Run one experiment end to end and return its aggregate.

    The manifest is written before any measurement and its status updated at the end
    (`completed`, `failed` or `interrupted`); results already written are never removed.
    """
    if config.processes > 1:
        raise ConfigError(
            f"processes: {config.processes}: this version runs experiments in a single "
            "process; set processes: 1"
        )
    check_prompts(config)
    layout = ResultsLayout(config.results_dir)
    experiment_id = new_experiment_id(config.name)
    experiment_dir = layout.experiment_dir(experiment_id)
    experiment_dir.mkdir(parents=True, exist_ok=False)
    write_manifest(experiment_dir, experiment_id, config, config.processes, launch_command)
    try:
        run_worker(config, experiment_id, progress)
        aggregated, path = aggregate_experiment(layout, experiment_id)
    except KeyboardInterrupt:
        set_status(experiment_dir, "interrupted")
        raise
    except BaseException:
        set_status(experiment_dir, "failed")
        raise
    set_status(experiment_dir, "completed")
    return ExperimentOutcome(experiment_id, experiment_dir, aggregated, path)
