"""The parquet dataset: every aggregated experiment of a results folder in three tables.

```
<out>/experiments.parquet   one row per aggregated experiment
<out>/requests.parquet      one row per measured request
<out>/timeseries.parquet    every row of every process's time-series sidecar
```

`experiments` has the CSV export's columns (`exporters.aggregated_row`, one name per
figure, units in the names, `config_hash` and the resolved config flattened to
`config.<dotted path>` from the manifest), the config columns sorted last (a list is
stored as its JSON text, as is a field whose values differ in type across experiments).
`requests` and `timeseries` hold the rows of the processes the aggregate was built from
(verified by marker and hash, `verification.load_complete_processes`), keyed by
`experiment_id` and `process_index`.

Per-request latencies: a process result keeps its requests and its latency samples
apart. The PyTorch engine records the samples in request order (one TTFT and one
end-to-end time per request, `output_tokens - 1` inter-token gaps each); they are
attributed to requests only where the counts agree exactly, otherwise that process's
latency columns are null and a note says so. Energy is not attributed to single
requests: `energy_j` is present and null.

Sidecars are read with pyarrow directly, so this layer never imports `core`.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from llenergymeasure.domain.experiment import (
    AggregatedResult,
    ExperimentManifest,
    RawProcessResult,
)
from llenergymeasure.errors import ResultsError
from llenergymeasure.fileio import atomic_target
from llenergymeasure.results.exporters import aggregated_column_types, aggregated_row
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model
from llenergymeasure.results.repository import load_aggregated_results
from llenergymeasure.results.verification import describe, load_complete_processes

TABLES = ("experiments", "requests", "timeseries")
CONFIG_PREFIX = "config."
REQUESTS_SCHEMA = pa.schema(
    [
        ("experiment_id", pa.string()),
        ("process_index", pa.int32()),
        ("prompt_id", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("stopped_by_eos", pa.bool_()),
        ("ttft_ms", pa.float64()),
        ("itl_mean_ms", pa.float64()),
        ("e2e_ms", pa.float64()),
        ("energy_j", pa.float64()),
    ]
)
ARROW_TYPES = {
    float: pa.float64(),
    int: pa.int64(),
    str: pa.string(),
    bool: pa.bool_(),
    datetime: pa.timestamp("us", tz="UTC"),
}
LATENCY_COLUMNS = ("ttft_ms", "itl_mean_ms", "e2e_ms")
KEY_FIELDS = [pa.field("experiment_id", pa.string()), pa.field("process_index", pa.int32())]


@dataclass
class Dataset:
    """The three tables, and one line for each thing left out of them."""

    experiments: pa.Table
    requests: pa.Table
    timeseries: pa.Table
    notes: list[str] = field(default_factory=list)


@dataclass
class _Experiment:
    """What one experiment contributes: its row, its processes, their notes."""

    row: dict[str, Any]
    processes: list[RawProcessResult]
    experiment_dir: Path
    notes: list[str]


def build_dataset(layout: ResultsLayout) -> Dataset:
    """Read every aggregated experiment under `layout` into the three tables.

    An unreadable aggregated file is left out with a note; a missing or unreadable
    manifest leaves that row's config columns null; a process result that does not
    verify leaves its requests and time series out, each with a note.

    Raises:
        ResultsError: no aggregated experiment could be read.

    """
    results, notes = load_aggregated_results(layout)
    if not results:
        raise ResultsError(f"{layout.aggregated_root}: no aggregated experiment to export")
    experiments = []
    for result in results:
        try:
            experiments.append(_read_experiment(layout, result))
        except ResultsError as exc:
            notes.append(str(exc))
    if not experiments:
        raise ResultsError(f"{layout.aggregated_root}: no aggregated experiment to export")
    for experiment in experiments:
        notes += experiment.notes
    requests, request_notes = _requests_table(experiments)
    timeseries, timeseries_notes = _timeseries_table(experiments)
    return Dataset(
        experiments=_experiments_table([e.row for e in experiments]),
        requests=requests,
        timeseries=timeseries,
        notes=notes + request_notes + timeseries_notes,
    )


def write_dataset(dataset: Dataset, out_dir: Path) -> list[Path]:
    """Write `<out_dir>/<table>.parquet` (zstd) for each table, each file atomically.

    An existing file of the same name is replaced, as the CSV export replaces its file.

    Returns:
        The paths written, in `TABLES` order.

    """
    paths = []
    for name in TABLES:
        path = Path(out_dir) / f"{name}.parquet"
        with atomic_target(path) as tmp:
            pq.write_table(getattr(dataset, name), tmp, compression="zstd")
        paths.append(path)
    return paths


def _read_experiment(layout: ResultsLayout, result: AggregatedResult) -> _Experiment:
    """The row and the verified processes; notes for what is missing."""
    experiment_dir = layout.experiment_dir(result.experiment_id)
    row = aggregated_row(result, results_root=layout.root)
    if not experiment_dir.is_dir():
        note = f"{experiment_dir}: not found (config, requests and time series left empty)"
        return _Experiment(row, [], experiment_dir, [note])
    notes: list[str] = []
    try:
        read_model(manifest_path(experiment_dir), ExperimentManifest)
    except ResultsError as exc:
        notes.append(f"{exc} (config columns of {result.experiment_id} left empty)")
    processes = _aggregated_processes(experiment_dir, result, notes)
    return _Experiment(row, processes, experiment_dir, notes)


def _aggregated_processes(
    experiment_dir: Path, result: AggregatedResult, notes: list[str]
) -> list[RawProcessResult]:
    """The verified results of the processes the aggregate was built from."""
    used = {p.process_index for p in result.processes}
    expected = result.aggregation.expected_num_processes
    loaded, missing = load_complete_processes(experiment_dir, expected, result.experiment_id)
    problems = {i: why for i, why in missing.items() if i in used}
    notes += [f"{line} (its requests and time series left out)" for line in describe(problems)]
    return [r for r in loaded if r.process_index in used]


def _experiments_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Result columns in CSV order, then the manifest's, then config columns sorted.

    Result columns have their field's type even where no experiment measured them (a
    GPU figure of CPU runs is a float64 column of nulls).
    """
    names = list(dict.fromkeys(name for row in rows for name in row))
    config = sorted(n for n in names if n.startswith(CONFIG_PREFIX))
    ordered = [n for n in names if not n.startswith(CONFIG_PREFIX)] + config
    types = aggregated_column_types() | {"config_hash": str}
    return pa.table(
        {name: _column([row.get(name) for row in rows], types.get(name)) for name in ordered}
    )


def _column(values: list[Any], kind: type | None = None) -> pa.Array:
    """One column of the field's type where known; otherwise inferred from the values.

    Lists, and values of mixed types (across experiments), are stored as JSON text.
    """
    if kind in ARROW_TYPES:
        return pa.array(values, ARROW_TYPES[kind])
    if not any(isinstance(v, (list, dict)) for v in values):
        try:
            return pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # mixed types: every value as its JSON text, below
    return pa.array([None if v is None else orjson.dumps(v).decode() for v in values])


def _requests_table(experiments: Sequence[_Experiment]) -> tuple[pa.Table, list[str]]:
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for experiment in experiments:
        for result in experiment.processes:
            latencies = _request_latencies(result)
            if latencies is None:
                notes.append(
                    f"{experiment.experiment_dir.name} process {result.process_index}: latency "
                    "samples do not match its requests one to one; per-request latencies "
                    "left empty"
                )
            rows += _request_rows(result, latencies)
    return pa.Table.from_pylist(rows, schema=REQUESTS_SCHEMA), notes


def _request_rows(
    result: RawProcessResult, latencies: list[tuple[float, float | None, float]] | None
) -> list[dict[str, Any]]:
    empty = (None, None, None)
    return [
        {
            "experiment_id": result.experiment_id,
            "process_index": result.process_index,
            **request.model_dump(),
            **dict(zip(LATENCY_COLUMNS, latencies[k] if latencies else empty, strict=True)),
            "energy_j": None,
        }
        for k, request in enumerate(result.requests)
    ]


def _request_latencies(
    result: RawProcessResult,
) -> list[tuple[float, float | None, float]] | None:
    """(TTFT, mean inter-token gap, end-to-end) per request, in ms; None where unattributable.

    No requests means nothing to attribute (an empty list). A result without samples,
    or whose counts differ from its requests', cannot be attributed.
    """
    requests = result.requests
    samples = result.latency_samples
    if not requests:
        return []
    gaps = [max(r.output_tokens - 1, 0) for r in requests]
    if samples is None or not (
        len(samples.ttft_ms) == len(samples.e2e_ms) == len(requests)
        and len(samples.itl_ms) == sum(gaps)
    ):
        return None
    latencies, start = [], 0
    for k, n in enumerate(gaps):
        own = samples.itl_ms[start : start + n]
        start += n
        latencies.append(
            (samples.ttft_ms[k], statistics.fmean(own) if own else None, samples.e2e_ms[k])
        )
    return latencies


def _timeseries_table(experiments: Sequence[_Experiment]) -> tuple[pa.Table, list[str]]:
    """The sidecars' rows, key columns in front; nulls where a sidecar lacks a column.

    A sidecar that cannot be read is left out with a note. Without any sidecar the table
    has the key columns only.
    """
    tables, notes = [], []
    for experiment in experiments:
        for result in experiment.processes:
            if result.timeseries_path is None:
                continue
            path = experiment.experiment_dir / result.timeseries_path
            try:
                tables.append(_keyed(pq.read_table(path), result))
            except (OSError, pa.ArrowInvalid) as exc:
                notes.append(f"{path}: time-series sidecar cannot be read ({exc}); left out")
    if not tables:
        return pa.schema(KEY_FIELDS).empty_table(), notes
    return pa.concat_tables(tables, promote_options="default"), notes


def _keyed(table: pa.Table, result: RawProcessResult) -> pa.Table:
    rows = table.num_rows
    experiment_id = pa.array([result.experiment_id] * rows, pa.string())
    process_index = pa.array([result.process_index] * rows, pa.int32())
    return table.add_column(0, KEY_FIELDS[0], experiment_id).add_column(
        1, KEY_FIELDS[1], process_index
    )
