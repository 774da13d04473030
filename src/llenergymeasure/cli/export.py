"""`llem export ID|RAW_DIR|RESULTS_DIR`: results as CSV, or time series as JSON.

```
llem export ID --csv [--per-process]    one row: results/exports/<id>.csv
llem export ID --csv --raw              one row per process: results/exports/<id>_processes.csv
llem export ID --timeseries-json        results/exports/<id>/process_<i>_timeseries.json
llem export RESULTS_DIR --csv           one row per aggregated experiment: exports/experiments.csv
llem export RESULTS_DIR --parquet       experiments, requests, timeseries: exports/dataset/*.parquet
```
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from llenergymeasure.cli.console import console
from llenergymeasure.cli.options import CSV, EXPERIMENT_HELP, RESULTS_DIR
from llenergymeasure.cli.outputs import FORCE, refuse_overwrite

if TYPE_CHECKING:
    from llenergymeasure.domain.experiment import ExperimentManifest, RawProcessResult
    from llenergymeasure.results.layout import ResultsLayout


def export(
    target: str = typer.Argument(
        ...,
        help=f"{EXPERIMENT_HELP} Or a results folder: all its experiments.",
        show_default=False,
    ),
    csv: bool = CSV,
    per_process: bool = typer.Option(
        False, "--per-process", help="Add process_<i>_* columns to the CSV."
    ),
    raw: bool = typer.Option(False, "--raw", help="CSV with one row per process instead."),
    timeseries_json: bool = typer.Option(
        False, "--timeseries-json", help="Per-process time-series JSON from the parquet sidecars."
    ),
    parquet: bool = typer.Option(
        False, "--parquet", help="Parquet dataset of a results folder (docs/analysis.md)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="File (CSV) or folder (JSON, parquet) to write; default: <results-dir>/exports/.",
    ),
    results_dir: Path = RESULTS_DIR,
    force: bool = FORCE,
) -> None:
    """Export results for spreadsheets, pandas, polars or duckdb."""
    from llenergymeasure.errors import ResultsError

    want_csv = csv or raw
    if parquet:
        _export_dataset(target, out, other=want_csv or timeseries_json or per_process)
        return
    if not (want_csv or timeseries_json):
        raise ResultsError(
            "say what to export: --csv, --csv --raw, --timeseries-json, or --parquet"
        )
    if raw and per_process:
        raise ResultsError("--per-process adds columns to the aggregated CSV; --raw is per process")
    if want_csv and timeseries_json and out is not None:
        raise ResultsError("--out names one output: export the CSV and the JSON separately")
    if want_csv:
        refuse_overwrite(out, "--out", force)
    layout, experiment_id = _resolve(target, results_dir)
    if experiment_id is None:
        if raw or timeseries_json:
            raise ResultsError(f"{target}: --raw and --timeseries-json need one experiment")
        _export_folder_csv(layout, out, per_process)
        return
    if raw:
        _export_processes_csv(layout, experiment_id, out)
    elif csv:
        _export_experiment_csv(layout, experiment_id, out, per_process)
    if timeseries_json:
        _export_timeseries_json(layout, experiment_id, out)


def _resolve(target: str, results_dir: Path) -> tuple[ResultsLayout, str | None]:
    """A results folder (id None), or an experiment by id or directory."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.layout import ResultsLayout, locate_experiment, manifest_path

    path = Path(target)
    if path.is_dir() and not manifest_path(path).is_file():
        if (path / "aggregated").is_dir() or (path / "raw").is_dir():
            return ResultsLayout(path), None
        raise ResultsError(
            f"{path}: not an experiment directory (results/raw/<id>, with experiment.json) "
            "nor a results folder (with aggregated/ or raw/)"
        )
    return locate_experiment(target, results_dir)


def _export_folder_csv(layout: ResultsLayout, out: Path | None, per_process: bool) -> None:
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.exporters import export_aggregated_to_csv
    from llenergymeasure.results.repository import load_aggregated_results

    results, skipped = load_aggregated_results(layout)
    for reason in skipped:
        console.print(f"[yellow]skipped[/] {escape(reason)}", highlight=False, soft_wrap=True)
    if not results:
        raise ResultsError(f"{layout.aggregated_root}: no aggregated experiment to export")
    path = export_aggregated_to_csv(
        results,
        out or layout.exports_root / "experiments.csv",
        results_root=layout.root,
        per_process=per_process,
    )
    _wrote(path, _count(len(results), "experiment"))


def _export_dataset(target: str, out: Path | None, *, other: bool) -> None:
    """`exports/dataset/{experiments,requests,timeseries}.parquet` of a results folder."""
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.dataset import build_dataset, write_dataset
    from llenergymeasure.results.layout import ResultsLayout

    path = Path(target)
    if other:
        raise ResultsError("--parquet writes the whole dataset: export CSV or JSON separately")
    if not (path.is_dir() and ((path / "aggregated").is_dir() or (path / "raw").is_dir())):
        raise ResultsError(f"{target}: --parquet needs a results folder (with aggregated/)")
    layout = ResultsLayout(path)
    dataset = build_dataset(layout)
    for note in dataset.notes:
        console.print(f"[yellow]skipped[/] {note}", highlight=False, soft_wrap=True)
    paths = write_dataset(dataset, out or layout.exports_root / "dataset")
    tables = (dataset.experiments, dataset.requests, dataset.timeseries)
    nouns = ("experiment", "request", "time-series row")
    for written, table, noun in zip(paths, tables, nouns, strict=True):
        _wrote(written, _count(table.num_rows, noun))


def _export_experiment_csv(
    layout: ResultsLayout, experiment_id: str, out: Path | None, per_process: bool
) -> None:
    from llenergymeasure.domain.experiment import AggregatedResult
    from llenergymeasure.errors import ResultsError
    from llenergymeasure.results.exporters import export_aggregated_to_csv
    from llenergymeasure.results.layout import read_model

    aggregated_path = layout.aggregated_path(experiment_id)
    if not aggregated_path.is_file():
        raise ResultsError(
            f"{experiment_id} is not aggregated: run llem aggregate "
            f"{layout.experiment_dir(experiment_id)} (or export --csv --raw)"
        )
    path = export_aggregated_to_csv(
        [read_model(aggregated_path, AggregatedResult)],
        out or layout.exports_root / f"{experiment_id}.csv",
        results_root=layout.root,
        per_process=per_process,
    )
    _wrote(path, _count(1, "experiment"))


def _export_processes_csv(layout: ResultsLayout, experiment_id: str, out: Path | None) -> None:
    from llenergymeasure.results.exporters import export_raw_to_csv

    _, results = _complete_processes(layout, experiment_id)
    path = export_raw_to_csv(
        results,
        out or layout.exports_root / f"{experiment_id}_processes.csv",
        results_root=layout.root,
    )
    _wrote(path, _count(len(results), "process"))


def _export_timeseries_json(layout: ResultsLayout, experiment_id: str, out: Path | None) -> None:
    from llenergymeasure.results.timeseries import export_experiment_timeseries

    manifest, results = _complete_processes(layout, experiment_id)
    paths = export_experiment_timeseries(
        layout.experiment_dir(experiment_id),
        manifest,
        results,
        out or layout.exports_root / experiment_id,
    )
    for path in paths:
        _wrote(path, "time series")


def _complete_processes(
    layout: ResultsLayout, experiment_id: str
) -> tuple[ExperimentManifest, list[RawProcessResult]]:
    """The verified process results (marker and hash); the others are named and skipped."""
    from llenergymeasure.domain.experiment import ExperimentManifest
    from llenergymeasure.errors import IncompleteExperiment
    from llenergymeasure.results.layout import manifest_path, read_model
    from llenergymeasure.results.verification import check_completeness

    experiment_dir = layout.experiment_dir(experiment_id)
    manifest = read_model(manifest_path(experiment_dir), ExperimentManifest)
    completeness = check_completeness(experiment_dir, manifest)
    if not completeness.results:
        raise IncompleteExperiment(f"{experiment_dir}: no complete process result to export")
    for note in completeness.problems:
        console.print(f"[yellow]skipped[/] {escape(note)}", highlight=False, soft_wrap=True)
    return manifest, completeness.results


def _wrote(path: Path, what: str) -> None:
    console.print(f"wrote {path} ({what})", markup=False, highlight=False, soft_wrap=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}{'es' if noun.endswith('s') else 's'}"
