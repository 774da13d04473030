"""`llem aggregate results/raw/<id>`: combine the processes of an experiment."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from llenergymeasure.cli.summary import print_summary


def aggregate(
    experiment_dir: Path = typer.Argument(..., help="results/raw/<id>"),
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
    from llenergymeasure.results.layout import ResultsLayout

    experiment_dir = Path(experiment_dir)
    if not experiment_dir.is_dir():
        raise ResultsError(f"{experiment_dir}: no such experiment directory")
    # Made absolute without following a symlink, which the layout refuses when it
    # leads out of the results root.
    absolute = Path(os.path.abspath(experiment_dir))
    layout = ResultsLayout(absolute.parent.parent)
    result, path = aggregate_experiment(
        layout,
        absolute.name,
        allow_partial=allow_partial,
        allow_unverified=allow_unverified,
    )
    print_summary(result, experiment_dir, path)
