"""The experiment manifest (`experiment.json`): written first, updated at the end."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from pathlib import Path

import orjson

from llenergymeasure import __version__
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.domain.experiment import ExperimentManifest, ExperimentStatus
from llenergymeasure.errors import ResultsError
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model, write_model


def config_hash(config: ExperimentConfig) -> str:
    """sha256 of the resolved config, stable across key order."""
    data = orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


def write_manifest(
    experiment_dir: Path,
    experiment_id: str,
    config: ExperimentConfig,
    num_processes: int,
    launch_command: list[str] | None = None,
) -> ExperimentManifest:
    """Create `experiment.json` for a new experiment (status `running`)."""
    manifest = ExperimentManifest(
        experiment_id=experiment_id,
        config=config.model_dump(mode="json"),
        config_hash=config_hash(config),
        expected_num_processes=num_processes,
        launch_command=launch_command,
        versions={"llenergymeasure": __version__, "python": platform.python_version()},
        created_at=datetime.now(timezone.utc),
    )
    write_model(manifest_path(experiment_dir), manifest)
    return manifest


def create_experiment(
    layout: ResultsLayout,
    experiment_id: str,
    config: ExperimentConfig,
    num_processes: int,
    launch_command: list[str] | None = None,
) -> Path:
    """Create `raw/<id>/` with its manifest; refuses an id that is already taken.

    Returns:
        The experiment directory.

    Raises:
        ResultsError: `raw/<id>` exists already.

    """
    experiment_dir = layout.experiment_dir(experiment_id)
    try:
        experiment_dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise ResultsError(
            f"{experiment_dir} exists already; choose another experiment id"
        ) from None
    write_manifest(experiment_dir, experiment_id, config, num_processes, launch_command)
    return experiment_dir


def read_manifest(experiment_dir: Path) -> ExperimentManifest:
    """The manifest of an experiment directory (a clear error when absent or broken)."""
    return read_model(manifest_path(experiment_dir), ExperimentManifest)


def set_status(experiment_dir: Path, status: ExperimentStatus) -> None:
    """Record how the experiment ended."""
    manifest = read_manifest(experiment_dir)
    write_model(manifest_path(experiment_dir), manifest.model_copy(update={"status": status}))
