"""`llem results list|show|prune` (and `compare`, in its own module)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli import compare
from llenergymeasure.cli.console import console
from llenergymeasure.cli.options import EXPERIMENT, RESULTS_DIR
from llenergymeasure.cli.summary import fmt, print_summary

if TYPE_CHECKING:
    from llenergymeasure.domain.experiment import ExperimentManifest

app = typer.Typer(help="Browse experiments on disk.", no_args_is_help=True)
app.command("compare")(compare.compare)


@app.command("list")
def list_(results_dir: Path = RESULTS_DIR) -> None:
    """One line per experiment, newest first."""
    from llenergymeasure.results.layout import ResultsLayout
    from llenergymeasure.results.repository import list_experiments, shown_status

    table = Table("experiment id", "status", "created", "tokens out", "J / token", "method")
    for exp in list_experiments(ResultsLayout(results_dir)):
        agg = exp.aggregated
        cells = (
            exp.manifest.experiment_id,
            shown_status(exp.manifest),
            _when(exp.manifest.created_at),
            f"{agg.output_tokens:,}" if agg else "-",
            fmt(agg.energy_per_output_token_j, digits=4) if agg else "-",
            agg.energy_method if agg else "-",
        )
        table.add_row(*map(Text, cells))
    console.print(table)


@app.command("show")
def show(experiment: str = EXPERIMENT, results_dir: Path = RESULTS_DIR) -> None:
    """The summary of one experiment."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.layout import locate_experiment
    from llenergymeasure.results.repository import load_experiment

    layout, experiment_id = locate_experiment(experiment, results_dir)
    exp = load_experiment(layout, experiment_id)
    if exp.aggregated is None:
        raise ResultsError(
            f"{experiment_id}: {_status_phrase(exp.manifest)}, not aggregated; "
            f"run llem aggregate {layout.experiment_dir(experiment_id)}"
        )
    print_summary(
        exp.aggregated, layout.experiment_dir(experiment_id), layout.aggregated_path(experiment_id)
    )
    if exp.manifest.status != "completed":
        console.print(
            f"status: {_status_phrase(exp.manifest)}", markup=False, highlight=False, soft_wrap=True
        )


@app.command("prune")
def prune(
    failed: bool = typer.Option(False, "--failed", help="Remove failed experiments."),
    interrupted: bool = typer.Option(
        False, "--interrupted", help="Remove interrupted experiments."
    ),
    died: bool = typer.Option(
        False, "--died", help="Remove experiments whose run was killed (shown as died)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before removing."),
    results_dir: Path = RESULTS_DIR,
) -> None:
    """Remove failed, interrupted or dead experiments (raw files and aggregate), after asking.

    Completed and running experiments are never removed.
    """
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.layout import ResultsLayout
    from llenergymeasure.results.repository import prunable_experiments, remove_experiment

    flags = [("failed", failed), ("interrupted", interrupted), ("died", died)]
    wanted = {name for name, on in flags if on}
    if not wanted:
        raise ResultsError("name what to prune: --failed, --interrupted and/or --died")
    layout = ResultsLayout(results_dir)
    experiments = prunable_experiments(layout, wanted)
    if not experiments:
        console.print(
            f"nothing to prune in {results_dir}", markup=False, highlight=False, soft_wrap=True
        )
        return
    for exp in experiments:
        console.print(
            f"  {exp.manifest.experiment_id}  ({_status_phrase(exp.manifest)})",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if not yes:
        typer.confirm(f"Remove these {len(experiments)} experiment(s)?", abort=True)
    for exp in experiments:
        for path in remove_experiment(layout, exp):
            console.print(f"removed {path}", markup=False, highlight=False, soft_wrap=True)


def _status_phrase(manifest: ExperimentManifest) -> str:
    """`failed (error: ...)`, `died (its run ended without recording its end)`, `running`."""
    from llenergymeasure.results.repository import shown_status

    status = shown_status(manifest)
    if status == "died":
        return "died (its run ended without recording its end)"
    return f"{status} (error: {manifest.error})" if manifest.error else status


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
