"""`llem aggregate ID|results/raw/<id>`: combine the processes of an experiment."""

from __future__ import annotations

from pathlib import Path

import typer

from llenergymeasure.cli.options import EXPERIMENT, RESULTS_DIR
from llenergymeasure.cli.summary import print_summary


def aggregate(
    experiment: str = EXPERIMENT,
    results_dir: Path = RESULTS_DIR,
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="Aggregate the complete processes and say so."
    ),
    allow_unverified: bool = typer.Option(
        False,
        "--allow-unverified",
        help="Aggregate even when the windows do not overlap or a device is claimed twice "
        "(the result is flagged).",
    ),
) -> None:
    """Check completeness, overlap and attribution, then write aggregated/<id>.json."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.aggregation import aggregate_experiment
    from llenergymeasure.results.layout import locate_experiment

    layout, experiment_id = locate_experiment(experiment, results_dir)
    experiment_dir = layout.experiment_dir(experiment_id)
    if not experiment_dir.is_dir():
        raise ResultsError(f"{experiment_dir}: no such experiment directory")
    result, path = aggregate_experiment(
        layout,
        experiment_id,
        allow_partial=allow_partial,
        allow_unverified=allow_unverified,
    )
    print_summary(result, experiment_dir, path)
