"""`llem plot power ID` and `llem plot campaign NAME`: PNG figures (matplotlib, extra `plot`).

```
llem plot power ID                     results/plots/<id>_power.png
llem plot campaign NAME [--metric M] [--x PATH]
                                       results/plots/<name>_<metric>_vs_<x>.png
```
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from llenergymeasure.cli.console import console
from llenergymeasure.cli.options import EXPERIMENT, RESULTS_DIR
from llenergymeasure.cli.outputs import FORCE, refuse_overwrite
from llenergymeasure.defaults import BOOTSTRAP_SEED
from llenergymeasure.results.metrics import METRICS, RANKING_METRIC

app = typer.Typer(
    help="Draw PNG figures of results (needs matplotlib, the extra 'plot' of llenergymeasure).",
    no_args_is_help=True,
)
OUT = typer.Option(None, "--out", help="PNG file to write; default: <results-dir>/plots/.")


@app.command("power")
def power(
    experiment: str = EXPERIMENT,
    results_dir: Path = RESULTS_DIR,
    out: Path | None = OUT,
    force: bool = FORCE,
) -> None:
    """Power of each GPU over time, the energy window shaded, idle baselines dashed."""
    refuse_overwrite(out, "--out", force)
    from llenergymeasure.errors import IncompleteExperiment, ResultsError
    from llenergymeasure.results.layout import locate_experiment
    from llenergymeasure.results.power_plot import plot_power
    from llenergymeasure.results.repository import load_experiment
    from llenergymeasure.results.verification import check_completeness

    layout, experiment_id = locate_experiment(experiment, results_dir)
    found = load_experiment(layout, experiment_id)
    experiment_dir = layout.experiment_dir(experiment_id)
    if found.aggregated is None:
        raise ResultsError(
            f"{experiment_id} is not aggregated: run llem aggregate {experiment_dir}"
        )
    completeness = check_completeness(experiment_dir, found.manifest)
    if not completeness.results:
        raise IncompleteExperiment(f"{experiment_dir}: no complete process result to plot")
    path = plot_power(
        found.aggregated,
        completeness.results,
        experiment_dir,
        out or layout.root / "plots" / f"{experiment_id}_power.png",
    )
    console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)


@app.command("campaign")
def campaign(
    campaign_name: str,
    metric: str = typer.Option(RANKING_METRIC, "--metric", help=", ".join(METRICS) + "."),
    x: str | None = typer.Option(
        None, "--x", help="Swept parameter on the x axis (dotted path); default: the only one."
    ),
    against: str | None = typer.Option(
        None,
        "--against",
        help="A second metric for the x axis instead (e.g. ttft_p95_ms): the trade-off curve, "
        "one point per value of --x.",
    ),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--seed", help="Seed of the bootstrap resampling."),
    results_dir: Path = RESULTS_DIR,
    out: Path | None = OUT,
    force: bool = FORCE,
) -> None:
    """A metric against a swept parameter (or another metric): means with 95 % intervals."""
    refuse_overwrite(out, "--out", force)
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.compare import compare, load_campaign_samples
    from llenergymeasure.results.layout import ResultsLayout
    from llenergymeasure.results.plots import plot_campaign, plot_tradeoff

    layout = ResultsLayout(results_dir)
    comparison = compare(load_campaign_samples(layout, campaign_name), seed=seed)
    if x is None:
        if len(comparison.parameter_names) != 1:
            raise ResultsError(
                "--x: name the parameter for the x axis, one of: "
                + (", ".join(comparison.parameter_names) or "none varies")
            )
        x = comparison.parameter_names[0]
    if against is None:
        path = plot_campaign(
            comparison,
            metric,
            x,
            out or layout.root / "plots" / f"{campaign_name}_{metric}_vs_{x}.png",
        )
    else:
        path = plot_tradeoff(
            comparison,
            metric,
            against,
            x,
            out or layout.root / "plots" / f"{campaign_name}_{metric}_vs_{against}.png",
        )
    for note in comparison.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
