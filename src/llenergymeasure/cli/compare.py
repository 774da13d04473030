"""`llem results compare ID... | --campaign NAME [--csv FILE]`: one row per configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli.console import console
from llenergymeasure.cli.outputs import FORCE, refuse_overwrite

if TYPE_CHECKING:
    from llenergymeasure.results.compare import Comparison, ComparisonRow, Interval

# Metric -> column header (unit below); the CSV has every metric of results.compare.METRICS.
TABLE_METRICS = {
    "energy_per_output_token_j": "energy\nJ/token",
    "total_tokens_per_second": "throughput\ntok/s",
    "tokens_per_joule": "efficiency\ntok/J",
    "padding_share": "padding\nshare",
    "ttft_p50_ms": "TTFT p50\nms",
    "ttft_p95_ms": "TTFT p95\nms",
    "itl_p50_ms": "ITL p50\nms",
    "itl_p95_ms": "ITL p95\nms",
    "goodput_token_share": "goodput\ntoken share",
}


def compare(
    experiment_ids: list[str] = typer.Argument(
        None, help="Experiments to compare; runs of the same config are its cycles."
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="Compare the completed experiments of this campaign."
    ),
    results_dir: Path = typer.Option(Path("results"), "--results-dir", help="Results root."),
    csv: Path | None = typer.Option(None, "--csv", help="Also write the table to this CSV file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap resampling."),
    resamples: int = typer.Option(
        10_000, "--resamples", min=100, max=1_000_000, help="Bootstrap resamples."
    ),
    force: bool = FORCE,
) -> None:
    """Mean and 95 % bootstrap interval over cycles of each configuration, and ratio to the best."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.compare import (
        compare as compare_samples,
    )
    from llenergymeasure.results.compare import (
        load_campaign_samples,
        load_experiment_samples,
        write_comparison_csv,
    )
    from llenergymeasure.results.layout import ResultsLayout

    refuse_overwrite(csv, "--csv", force)
    if bool(experiment_ids) == bool(campaign):
        raise ResultsError("name experiment ids or --campaign NAME (one of the two)")
    layout = ResultsLayout(results_dir)
    if campaign:
        samples = load_campaign_samples(layout, campaign)
    else:
        samples = load_experiment_samples(layout, experiment_ids)
    comparison = compare_samples(samples, seed=seed, resamples=resamples)
    console.print(_table(comparison, campaign))
    for note in comparison.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    if csv is not None:
        path = write_comparison_csv(comparison, csv)
        console.print(
            f"wrote {path} ({len(comparison.rows)} configurations)", markup=False, highlight=False
        )


def _table(comparison: Comparison, campaign: str | None) -> Table:
    title = (
        f"{campaign or 'comparison'}: {', '.join(comparison.model_names)} on "
        f"{', '.join(comparison.devices)}; energy: {', '.join(comparison.energy_methods)}"
    )
    table = Table(
        title=Text(title),
        caption="each cell: mean over cycles, below it the 95 % bootstrap interval; "
        "x best: energy per output token over the lowest",
        title_justify="left",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("config", overflow="fold")
    for header in _parameter_headers(comparison.parameter_names):
        table.add_column(header, overflow="fold")
    table.add_column("cycles", justify="right")
    shown = _shown_metrics(comparison)
    for name in shown:
        table.add_column(TABLE_METRICS[name], justify="right", overflow="fold")
    table.add_column("x best", justify="right")
    prefix = f"{campaign}-" if campaign else ""
    for row in comparison.rows:
        table.add_row(*_cells(row, comparison.parameter_names, prefix, shown))
    return table


def _shown_metrics(comparison: Comparison) -> list[str]:
    """Every table metric, less goodput where no experiment served a load with an SLO."""
    return [
        name
        for name in TABLE_METRICS
        if name != "goodput_token_share"
        or any(row.intervals[name].mean is not None for row in comparison.rows)
    ]


def _parameter_headers(paths: list[str]) -> list[str]:
    """The field of each dotted path (`batch_size`), from its section on (`torch_compile.mode`).

    Below a top-level section the last two parts name the field; the whole path where
    that is still ambiguous.
    """
    short = [".".join(path.split(".")[1:][-2:]) or path for path in paths]
    return [
        name if short.count(name) == 1 else path for name, path in zip(short, paths, strict=True)
    ]


def _cells(
    row: ComparisonRow, parameter_names: list[str], prefix: str, metrics: list[str]
) -> list[str | Text]:
    return [
        Text(row.label.removeprefix(prefix)),
        *(Text(str(row.parameters.get(name))) for name in parameter_names),
        str(len(row.experiment_ids)),
        *(_interval(row.intervals[name]) for name in metrics),
        "n/a" if row.ratio_to_best is None else f"{row.ratio_to_best:.2f}",
    ]


def _interval(interval: Interval) -> Text:
    """The mean, and below it the interval (dim)."""
    if interval.mean is None:
        return Text("n/a")
    if interval.low is None or interval.high is None:
        return Text.assemble(number(interval.mean), "\n", ("(1 cycle)", "dim"))
    bounds = f"[{number(interval.low, 3)}, {number(interval.high, 3)}]"
    return Text.assemble(number(interval.mean), "\n", (bounds, "dim"))


def number(value: float, digits: int = 4) -> str:
    """`digits` significant digits; whole numbers from 1,000 (no exponent below 1e-3)."""
    if abs(value) >= 1_000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
