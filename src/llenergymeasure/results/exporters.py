"""CSV exports: one row per aggregated experiment, or one row per process.

Columns (`results/csv_columns.py`): the core figures first, then the grouped prefixes
in docs/formats.md's order (`energy_`, `thermal_`, `env_`, `gpu_`, `latency_`, `batch_`,
`kv_cache_`, `padding_`, `deployment_`, `quantization_`, `phase_`, `timeseries_path`),
then, on request, `process_<i>_*` columns. A value that was not measured, or a field
that a result of an older schema does not have, is an empty cell.
Floats are written in full precision (repr), so they read back to the same number;
booleans are `true` / `false`, times ISO 8601.

With a results root, each row also gets `config_hash` and the experiment's resolved
config, one `config.<dotted field>` column per field (`config.generation.batch_size`),
read from the manifest beside the result; `created_at` is the experiment's creation
time (the manifest's) and `aggregated_at` when its aggregate was written.
`energy_scope` says what an energy figure covers: `device` (the process's own devices)
or `machine` (a host-level reading shared by the host's processes, counted once).

`timeseries_path` holds the absolute paths of the parquet sidecars that exist (`;`
between processes), resolved against the experiment directory, because results store
them relative to it.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

import orjson
from pydantic import BaseModel

from llenergymeasure.domain.energy import BoundaryName, EnergyBoundary
from llenergymeasure.domain.environment import EnvironmentMetadata
from llenergymeasure.domain.experiment import (
    AggregatedResult,
    ExperimentManifest,
    ProcessSummary,
    RawProcessResult,
)
from llenergymeasure.errors import ResultsError
from llenergymeasure.fileio import atomic_write_bytes
from llenergymeasure.results.csv_columns import (
    AGGREGATED_CORE,
    BOUNDARY_COLUMNS,
    BOUNDARY_FIELDS,
    CONFIG_PREFIX,
    ENV,
    GROUPED_COLUMNS,
    NVML_UUID_PREFIXES,
    PROCESS_FIELDS,
    RAW_CORE,
    RAW_FIGURES,
    RAW_IDENTITY,
    RESULT_GROUPS,
    WARNING_CODES,
    order_columns,
)
from llenergymeasure.results.energy_combination import energy_scope
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model


def export_aggregated_to_csv(
    results: Sequence[AggregatedResult],
    output_path: Path,
    *,
    results_root: Path | None = None,
    per_process: bool = False,
) -> Path:
    """Write one row per aggregated experiment, atomically.

    Args:
        results: the experiments, in the row order wanted.
        output_path: the CSV file to write.
        results_root: where their raw directories are, to resolve the sidecar paths;
            None keeps the names as stored (relative to each experiment directory).
        per_process: add `process_<i>_gpu_uuid, _tokens, _energy_j, _tokens_per_second`.

    Returns:
        The path written.

    """
    rows = [
        _aggregated_to_row(r, _experiment_dir(results_root, r.experiment_id), per_process)
        for r in results
    ]
    return _write_csv(Path(output_path), rows, tuple(AGGREGATED_CORE))


def _manifest_beside(experiment_dir: Path | None) -> ExperimentManifest | None:
    """The manifest beside a result, None without a results root or a readable manifest."""
    if experiment_dir is None:
        return None
    try:
        return read_model(manifest_path(experiment_dir), ExperimentManifest)
    except ResultsError:
        return None


def aggregated_row(result: AggregatedResult, *, results_root: Path | None = None) -> dict[str, Any]:
    """One experiment's CSV columns in CSV order, values as Python objects (None: unknown).

    The parquet dataset (`results/dataset.py`) uses it, so a figure has one name in both.
    """
    row = _aggregated_to_row(result, _experiment_dir(results_root, result.experiment_id), False)
    return {column: row[column] for column in order_columns(row, tuple(AGGREGATED_CORE))}


def aggregated_column_types() -> dict[str, type]:
    """The type of each `aggregated_row` column's values, read from the result models.

    `float, int, str, bool` or `datetime`; a field of several types is left out.
    """
    paths = [
        *((AggregatedResult, c, p) for c, p in {**AGGREGATED_CORE, **RESULT_GROUPS}.items()),
        *((EnvironmentMetadata, c, p) for c, p in ENV.items()),
        *(
            (EnergyBoundary, f"energy_{b}_{suffix}", field)
            for b in get_args(BoundaryName)
            for suffix, field in BOUNDARY_FIELDS.items()
        ),
        (EnergyBoundary, "energy_facility_co2e_g", "co2e_g"),
    ]
    types = {column: _field_type(model, path) for model, column, path in paths}
    return {c: t for c, t in types.items() if t is not None} | {"timeseries_path": str}


def _field_type(model: type[BaseModel], path: str) -> type | None:
    """The leaf type at a dotted path: `X | None` is X, `list[X]` X, a Literal its values'."""
    current: Any = model
    for part in path.split("."):
        if part.isdigit():
            continue
        if part in current.model_fields:
            current = _plain_type(current.model_fields[part].annotation)
        else:
            current = _plain_type(current.model_computed_fields[part].return_type)
    return current if isinstance(current, type) else None


def _plain_type(annotation: Any) -> Any:
    origin = get_origin(annotation)
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin is Literal:
        kinds = {type(a) for a in args}
        return kinds.pop() if len(kinds) == 1 else None
    if origin is list or (origin in (Union, UnionType) and len(args) == 1):
        return _plain_type(args[0])
    return None if origin is not None else annotation


def export_raw_to_csv(
    results: Sequence[RawProcessResult], output_path: Path, *, results_root: Path | None = None
) -> Path:
    """Write one row per process result, atomically (see `export_aggregated_to_csv`)."""
    rows = [_raw_to_row(r, _experiment_dir(results_root, r.experiment_id)) for r in results]
    return _write_csv(Path(output_path), rows, RAW_CORE)


def _aggregated_to_row(
    result: AggregatedResult, experiment_dir: Path | None, per_process: bool
) -> dict[str, Any]:
    """Core columns, then the grouped ones, then optionally the per-process ones."""
    manifest = _manifest_beside(experiment_dir)
    row = {column: _lookup(result, path) for column, path in AGGREGATED_CORE.items()}
    if manifest is not None:
        row["created_at"] = manifest.created_at
    row |= _grouped_columns(
        result,
        _first_host_environment(result),
        _timeseries_cell(experiment_dir, result.timeseries_paths),
    )
    row["energy_scope"] = _combined_scope([p.energy_scope for p in result.processes])
    row |= _config_columns(manifest)
    if per_process:
        expected = range(result.aggregation.expected_num_processes)
        row |= {f"process_{i}_{field}": None for i in expected for field in PROCESS_FIELDS}
        for process in result.processes:
            row |= _process_columns(process)
    return row


def _raw_to_row(result: RawProcessResult, experiment_dir: Path | None) -> dict[str, Any]:
    row = {column: _lookup(result, path) for column, path in RAW_IDENTITY.items()}
    row["gpu_uuid"] = _gpu_uuids(result)
    row |= {column: _lookup(result, path) for column, path in RAW_FIGURES.items()}
    paths = [result.timeseries_path] if result.timeseries_path else []
    row |= _grouped_columns(result, result.environment, _timeseries_cell(experiment_dir, paths))
    row["energy_scope"] = energy_scope(result)
    return row | _config_columns(_manifest_beside(experiment_dir))


def _combined_scope(scopes: Sequence[str | None]) -> str | None:
    """The processes' one scope, `device+machine` for a mix; None when none is known."""
    known = sorted({s for s in scopes if s is not None})
    return "+".join(known) or None


def _config_columns(manifest: ExperimentManifest | None) -> dict[str, Any]:
    """`config_hash` and `config.<dotted field>` for every field of the resolved config."""
    if manifest is None:
        return {"config_hash": None}
    return {"config_hash": manifest.config_hash, **_flatten(manifest.config, CONFIG_PREFIX)}


def _flatten(data: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _grouped_columns(
    result: AggregatedResult | RawProcessResult,
    environment: EnvironmentMetadata | None,
    timeseries: str | None,
) -> dict[str, Any]:
    return {
        **{column: _lookup(result, path) for column, path in RESULT_GROUPS.items()},
        **_boundary_columns(result),
        **{column: _lookup(environment, path) for column, path in ENV.items()},
        "timeseries_path": timeseries,
        WARNING_CODES: ";".join(dict.fromkeys(w.code for w in result.warnings)) or None,
    }


def _boundary_columns(result: AggregatedResult | RawProcessResult) -> dict[str, Any]:
    """One column per boundary and figure; empty where a result has no such boundary."""
    row: dict[str, Any] = dict.fromkeys(BOUNDARY_COLUMNS)
    for boundary in result.energy_boundaries:
        for suffix, field in BOUNDARY_FIELDS.items():
            row[f"energy_{boundary.name}_{suffix}"] = getattr(boundary, field)
        if boundary.name == "facility":
            row["energy_facility_co2e_g"] = boundary.co2e_g
    return row


def _process_columns(process: ProcessSummary) -> dict[str, Any]:
    """NVML device ids start with GPU- or MIG-; RAPL and estimate ids are not GPUs."""
    uuids = [d for d in process.device_ids if d.startswith(NVML_UUID_PREFIXES)]
    prefix = f"process_{process.process_index}_"
    return {
        f"{prefix}gpu_uuid": ";".join(uuids) or None,
        f"{prefix}tokens": process.output_tokens,
        f"{prefix}energy_j": process.energy_j,
        f"{prefix}energy_scope": process.energy_scope,
        f"{prefix}tokens_per_second": process.tokens_per_second,
    }


def _gpu_uuids(result: RawProcessResult) -> str | None:
    return ";".join(d.device_id for d in result.devices if d.kind == "gpu") or None


def _first_host_environment(result: AggregatedResult) -> EnvironmentMetadata | None:
    """The environment of process 0's host, else of the first host by name."""
    hosts = [p.host for p in result.processes] + sorted(result.environments)
    return next((result.environments[h] for h in hosts if h in result.environments), None)


def _experiment_dir(results_root: Path | None, experiment_id: str) -> Path | None:
    if results_root is None:
        return None
    return ResultsLayout(results_root).experiment_dir(experiment_id)


def _timeseries_cell(experiment_dir: Path | None, names: Sequence[str]) -> str | None:
    """Sidecar paths resolved against the experiment directory; missing files left out."""
    if experiment_dir is None:
        return ";".join(names) or None
    paths = [Path(experiment_dir).absolute() / name for name in names]
    return ";".join(str(p) for p in paths if p.is_file()) or None


def _lookup(obj: Any, path: str) -> Any:
    """Follow a dotted attribute path; None where any step is None or absent."""
    for part in path.split("."):
        if obj is None:
            return None
        if part.isdigit():
            obj = obj[int(part)] if int(part) < len(obj) else None
        else:
            obj = getattr(obj, part)
    return obj


def _write_csv(path: Path, rows: list[dict[str, Any]], core: Sequence[str]) -> Path:
    columns = order_columns([*core, *GROUPED_COLUMNS, *(c for row in rows for c in row)], core)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({column: csv_cell(value) for column, value in row.items()} for row in rows)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))
    return path


def csv_cell(value: Any) -> str:
    """None, NaN and infinities are empty; floats in full precision."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)
