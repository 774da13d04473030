"""`llem results list|show`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli import compare
from llenergymeasure.cli.console import console
from llenergymeasure.cli.summary import fmt, print_summary

app = typer.Typer(help="Browse experiments on disk.", no_args_is_help=True)
RESULTS_DIR = typer.Option(Path("results"), "--results-dir", help="Results root.")
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
def show(experiment_id: str, results_dir: Path = RESULTS_DIR) -> None:
    """The summary of one experiment."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.layout import ResultsLayout
    from llenergymeasure.results.repository import load_experiment, shown_status

    layout = ResultsLayout(results_dir)
    exp = load_experiment(layout, experiment_id)
    if exp.aggregated is None:
        status = shown_status(exp.manifest)
        how = " (its run ended without recording its end)" if status == "died" else ""
        raise ResultsError(
            f"{experiment_id}: {status}{how}, not aggregated; "
            f"run llem aggregate {layout.experiment_dir(experiment_id)}"
        )
    print_summary(
        exp.aggregated, layout.experiment_dir(experiment_id), layout.aggregated_path(experiment_id)
    )


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
