"""Experiments from Python: load a config, run it, aggregate it, read its result."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from llenergymeasure.config.loader import load_config as _load_config
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.defaults import RESULTS_DIR
from llenergymeasure.domain.experiment import AggregatedResult
from llenergymeasure.errors import ResultsError
from llenergymeasure.results.layout import locate_experiment

if TYPE_CHECKING:
    from llenergymeasure.orchestration.launcher import ExperimentOutcome


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read and validate an experiment config, as `llem run` does.

    Args:
        path: the YAML file.
        overrides: `dotted.path=value` strings, as `llem run --set`.

    Raises:
        ConfigError: naming the file and the field, on any problem.

    """
    return _load_config(path, overrides)


def run_experiment(
    config: ExperimentConfig | str | Path, overrides: Iterable[str] = ()
) -> ExperimentOutcome:
    """Run one experiment end to end, as `llem run`, and return where it is and its aggregate.

    Args:
        config: a config object, or the path of a YAML config (several processes need a
            path: each worker reads it).
        overrides: `dotted.path=value` strings applied to a config read from a path.

    Raises:
        ConfigError: an invalid config, or overrides given with a config object.
        WorkerFailed: a worker failed.

    """
    from llenergymeasure.errors import ConfigError
    from llenergymeasure.orchestration.launcher import ConfigSource, LaunchOptions
    from llenergymeasure.orchestration.launcher import run_experiment as _run

    overrides = tuple(overrides)
    if isinstance(config, ExperimentConfig):
        if overrides:
            raise ConfigError("run_experiment: overrides apply to a config path, not an object")
        return _run(config)
    path = Path(config)
    loaded = _load_config(path, overrides)
    return _run(loaded, launch=LaunchOptions(source=ConfigSource(path.resolve(), overrides)))


def aggregate(
    experiment_dir: str | Path, *, allow_partial: bool = False, allow_unverified: bool = False
) -> AggregatedResult:
    """Combine the processes of `results/raw/<id>`, with the checks of `llem aggregate`.

    Writes `results/aggregated/<id>.json` and returns it.

    Raises:
        ResultsError: no such directory; IncompleteExperiment or UnverifiedExperiment
            where a check fails and the matching `allow_` flag is not set.

    """
    from llenergymeasure.results.aggregation import aggregate_experiment

    layout, experiment_id = locate_experiment(Path(experiment_dir), RESULTS_DIR)
    result, _ = aggregate_experiment(
        layout, experiment_id, allow_partial=allow_partial, allow_unverified=allow_unverified
    )
    return result


def load_result(id_or_path: str | Path, results_dir: str | Path = RESULTS_DIR) -> AggregatedResult:
    """The aggregated result of an experiment.

    `id_or_path` is an experiment id under `results_dir`, its `results/raw/<id>`
    directory, or an `aggregated/<id>.json` file.

    Raises:
        ResultsError: no such experiment, or it is not aggregated.

    """
    from llenergymeasure.results.layout import read_model

    path = Path(id_or_path)
    if path.is_file() and path.parent.name != "aggregated":
        return read_model(path, AggregatedResult)
    layout, experiment_id = locate_experiment(path, Path(results_dir))
    aggregated = layout.aggregated_path(experiment_id)
    if not aggregated.is_file():
        raise ResultsError(
            f"{experiment_id}: no aggregated result at {aggregated}; "
            f"run llem aggregate {layout.experiment_dir(experiment_id)}"
        )
    return read_model(aggregated, AggregatedResult)
