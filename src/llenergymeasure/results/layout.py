"""Where results live on disk, and how they are written and read (docs/design.md section 3).

```
<root>/raw/<id>/experiment.json
<root>/raw/<id>/process_<i>.json
<root>/raw/<id>/process_<i>_timeseries.parquet
<root>/raw/<id>/.completed_<i>
<root>/aggregated/<id>.json
<root>/exports/                      CSV and JSON written by `llem export`
```
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from llenergymeasure.domain.experiment import SCHEMA_VERSION, CompletionMarker
from llenergymeasure.errors import ResultsError
from llenergymeasure.fileio import atomic_write_bytes

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MAX_RESULT_BYTES = 512 << 20
ModelT = TypeVar("ModelT", bound=BaseModel)


def validate_experiment_id(experiment_id: str) -> str:
    """Refuse ids that are not plain names (and so could escape the results root)."""
    if not ID_PATTERN.match(experiment_id) or ".." in experiment_id:
        raise ResultsError(
            f"invalid experiment id {experiment_id!r}: use letters, digits, '.', '_' and '-'"
        )
    return experiment_id


class ResultsLayout:
    """Paths under one results root."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.raw_root = self.root / "raw"
        self.aggregated_root = self.root / "aggregated"
        self.exports_root = self.root / "exports"

    def experiment_dir(self, experiment_id: str) -> Path:
        """`raw/<id>`, refusing ids (or symlinks) that lead outside the raw root."""
        path = self.raw_root / validate_experiment_id(experiment_id)
        if path.exists() and not path.resolve().is_relative_to(self.raw_root.resolve()):
            raise ResultsError(f"{path} points outside {self.raw_root}; refusing to use it")
        return path

    def aggregated_path(self, experiment_id: str) -> Path:
        """`aggregated/<id>.json`."""
        return self.aggregated_root / f"{validate_experiment_id(experiment_id)}.json"


def locate_experiment(target: str | Path, results_dir: Path) -> tuple[ResultsLayout, str]:
    """The results root and id of an experiment named by its id, directory or aggregate.

    Every command and API call that takes an experiment finds it here.

    Args:
        target: an experiment id under `results_dir`, a path `<root>/raw/<id>` (a
            directory holding `experiment.json`), or its aggregate `<root>/aggregated/<id>.json`.
        results_dir: the results root an id is looked up in.

    Raises:
        ResultsError: a path that is no experiment directory, an invalid id, or an id
            with neither a raw directory nor an aggregate under `results_dir`.

    """
    path = Path(target)
    if path.is_dir() and manifest_path(path).is_file():
        # Absolute without following a symlink, which the layout refuses when it leads
        # out of the results root.
        absolute = Path(os.path.abspath(path))
        if absolute.parent.name != "raw":
            # Its root would be read as the grandparent: another experiment of that id
            # there, or none, instead of this one.
            raise ResultsError(
                f"{target}: an experiment directory is read where llem writes it, "
                f"<results root>/raw/<id>; this one is in {absolute.parent}"
            )
        return ResultsLayout(absolute.parent.parent), absolute.name
    if path.is_dir() and path.parent.name == "raw" and any(path.iterdir()):
        # An experiment's directory whose manifest is gone (a run killed as it wrote it).
        raise ResultsError(f"{manifest_path(path)}: not found; this experiment cannot be read")
    if path.is_file() and path.suffix == ".json" and path.parent.name == "aggregated":
        absolute = Path(os.path.abspath(path))
        return ResultsLayout(absolute.parent.parent), validate_experiment_id(absolute.stem)
    if path.exists():
        raise ResultsError(
            f"{target}: not an experiment directory (results/raw/<id>, with experiment.json)"
        )
    if path.parent != Path("."):
        raise ResultsError(f"{target}: no such experiment directory")
    layout = ResultsLayout(results_dir)
    experiment_id = validate_experiment_id(str(target))
    if not (
        layout.experiment_dir(experiment_id).is_dir()
        or layout.aggregated_path(experiment_id).is_file()
    ):
        raise ResultsError(
            f"no experiment {experiment_id} under {results_dir}: "
            "pass --results-dir, or the path results/raw/<id>"
        )
    return layout, experiment_id


def manifest_path(experiment_dir: Path) -> Path:
    """`experiment.json` of an experiment directory."""
    return experiment_dir / "experiment.json"


def process_result_path(experiment_dir: Path, index: int) -> Path:
    """`process_<i>.json`."""
    return experiment_dir / f"process_{index}.json"


def timeseries_path(experiment_dir: Path, index: int) -> Path:
    """`process_<i>_timeseries.parquet`."""
    return experiment_dir / f"process_{index}_timeseries.parquet"


def marker_path(experiment_dir: Path, index: int) -> Path:
    """`.completed_<i>`."""
    return experiment_dir / f".completed_{index}"


def to_json_bytes(model: BaseModel) -> bytes:
    """Indented JSON; NaN and infinities become null, never a number."""
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_INDENT_2)


def write_model(path: Path, model: BaseModel) -> bytes:
    """Write a model as JSON atomically; returns the bytes written (for hashing)."""
    data = to_json_bytes(model)
    atomic_write_bytes(path, data)
    return data


def write_marker(experiment_dir: Path, index: int, result_bytes: bytes) -> Path:
    """Write `.completed_<i>` holding the sha256 of the result bytes. Call it last."""
    marker = CompletionMarker(
        process_index=index,
        result_sha256=hashlib.sha256(result_bytes).hexdigest(),
        written_at=datetime.now(timezone.utc),
    )
    path = marker_path(experiment_dir, index)
    write_model(path, marker)
    return path


def read_model(path: Path, model_type: type[ModelT]) -> ModelT:
    """Read a result file, with a clear error for a missing, broken or newer file."""
    return parse_model(read_result_bytes(path), path, model_type)


def parse_model(data: bytes, path: Path, model_type: type[ModelT]) -> ModelT:
    """Validate the bytes of a result file already read (e.g. to check its hash)."""
    obj = parse_json_object(data, path)
    version = obj.get("schema_version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ResultsError(f"{path}: schema_version {one_line(repr(version), 40)} is not a number")
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: schema_version {version} is newer than this llem reads "
            f"({SCHEMA_VERSION}); upgrade llenergymeasure"
        )
    try:
        return model_type.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = one_line(".".join(str(p) for p in first["loc"]), 80)
        raise ResultsError(
            f"{path}: invalid {model_type.__name__}: {field}: {one_line(first['msg'], 200)}"
        ) from None


def read_result_bytes(path: Path) -> bytes:
    """The bytes of a result file, refusing files over `MAX_RESULT_BYTES`."""
    try:
        if path.stat().st_size > MAX_RESULT_BYTES:
            raise ResultsError(f"{path}: larger than {MAX_RESULT_BYTES} bytes; refusing to read")
        return path.read_bytes()
    except FileNotFoundError:
        raise ResultsError(f"{path}: not found") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read: {exc.strerror or exc}") from None


def parse_json_object(data: bytes, path: Path) -> dict:
    """Parse bytes that must hold a JSON object; `path` names them in errors."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON (truncated or corrupted?): {exc}") from None
    if not isinstance(obj, dict):
        raise ResultsError(f"{path}: expected a JSON object")
    return obj


def one_line(text: str, limit: int) -> str:
    """`text` with control characters escaped and cut to `limit` characters.

    Field names and messages can carry text of the file itself (a key of a mapping),
    which must not break the one-line error.
    """
    flat = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
