"""`llem results compare ID... | --campaign NAME [--csv [--out FILE]]`: a row per configuration."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli.console import console
from llenergymeasure.cli.options import CSV, EXPERIMENT_HELP, RESULTS_DIR
from llenergymeasure.cli.outputs import FORCE, refuse_overwrite
from llenergymeasure.defaults import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from llenergymeasure.results.metrics import METRICS

if TYPE_CHECKING:
    from llenergymeasure.results.compare import Comparison, ComparisonRow, Interval, SampleSet
    from llenergymeasure.results.layout import ResultsLayout


def compare(
    experiments: list[str] = typer.Argument(
        None,
        help=f"Experiments to compare; runs of the same config are its cycles. {EXPERIMENT_HELP}",
        show_default=False,
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="Compare the completed experiments of this campaign."
    ),
    results_dir: Path = RESULTS_DIR,
    csv: bool = CSV,
    out: Path | None = typer.Option(
        None,
        "--out",
        help="CSV file to write; default: <campaign>_comparison.csv (or comparison.csv) "
        "under <results-dir>/exports/.",
    ),
    seed: int = typer.Option(BOOTSTRAP_SEED, "--seed", help="Seed of the bootstrap resampling."),
    resamples: int = typer.Option(
        BOOTSTRAP_RESAMPLES, "--resamples", min=100, max=1_000_000, help="Bootstrap resamples."
    ),
    force: bool = FORCE,
) -> None:
    """Mean and 95 % bootstrap interval over cycles of each configuration, and ratio to the best.

    With --csv, the table is also written as CSV, every metric's mean and interval.
    """
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.compare import compare as compare_samples
    from llenergymeasure.results.compare import load_campaign_samples, write_comparison_csv
    from llenergymeasure.results.layout import ResultsLayout

    if out is not None and not csv:
        raise ResultsError("--out names the CSV file: add --csv")
    refuse_overwrite(out, "--out", force)
    if bool(experiments) == bool(campaign):
        raise ResultsError("name experiments or --campaign NAME (one of the two)")
    if campaign:
        layout = ResultsLayout(results_dir)
        samples = load_campaign_samples(layout, campaign)
    else:
        layout, samples = _experiment_samples(experiments, results_dir)
    comparison = compare_samples(samples, seed=seed, resamples=resamples)
    console.print(_table(comparison, campaign))
    for note in comparison.notes:
        console.print(f"[yellow]note[/] {escape(note)}", highlight=False, soft_wrap=True)
    if csv:
        name = f"{campaign}_comparison.csv" if campaign else "comparison.csv"
        path = write_comparison_csv(comparison, out or layout.exports_root / name)
        console.print(
            f"wrote {path} ({len(comparison.rows)} configurations)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _experiment_samples(
    experiments: list[str], results_dir: Path
) -> tuple[ResultsLayout, SampleSet]:
    """The experiments named by id or directory, which must share one results root."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.compare import load_experiment_samples
    from llenergymeasure.results.layout import locate_experiment

    if any(name.endswith(".csv") for name in experiments):
        raise ResultsError("--csv is a flag: name the file with --csv --out FILE")
    located = [locate_experiment(name, results_dir) for name in experiments]
    roots = {Path(layout.root).absolute() for layout, _ in located}
    if len(roots) > 1:
        raise ResultsError(
            "compare experiments of one results root: " + ", ".join(map(str, sorted(roots)))
        )
    layout = located[0][0]
    return layout, load_experiment_samples(layout, [experiment_id for _, experiment_id in located])


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
        metric = METRICS[name]
        table.add_column(f"{metric.column}\n{metric.unit}", justify="right", overflow="fold")
    table.add_column("x best", justify="right")
    prefix = f"{campaign}-" if campaign else ""
    for row in comparison.rows:
        table.add_row(*_cells(row, comparison.parameter_names, prefix, shown))
    return table


# Figures only some experiments have: a column only where one of the rows has it.
OPTIONAL_METRICS = (
    "padding_share",
    "goodput_token_share",
    "prefill_j_per_token",
    "decode_j_per_token",
)


def _shown_metrics(comparison: Comparison) -> list[str]:
    """Every table metric, less the optional ones (padding, goodput, phases) no row has."""
    return [
        name
        for name in METRICS
        if name not in OPTIONAL_METRICS
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
