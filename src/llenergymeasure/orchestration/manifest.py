"""The experiment manifest (`experiment.json`): written first, updated at the end."""

from __future__ import annotations

import hashlib
import os
import platform
import socket
from datetime import datetime, timezone
from pathlib import Path

import orjson

from llenergymeasure import __version__
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.domain.experiment import ExperimentManifest, ExperimentStatus
from llenergymeasure.errors import LlemError, ResultsError, StorageError
from llenergymeasure.fileio import describe_os_error
from llenergymeasure.log import logger
from llenergymeasure.orchestration.ids import new_experiment_id
from llenergymeasure.redaction import redact, redact_all
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model, write_model

# Fresh ids drawn before giving up; two runs started in the same second share a stamp
# and differ by their random suffix, which collides once in 65,536.
ID_ATTEMPTS = 20


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
    """Create `experiment.json` for a new experiment (status `running`).

    The launch command is recorded with any token masked; this process is recorded as
    the launcher (host and pid).
    """
    manifest = ExperimentManifest(
        experiment_id=experiment_id,
        config=config.model_dump(mode="json"),
        config_hash=config_hash(config),
        expected_num_processes=num_processes,
        launch_command=redact_all(launch_command) if launch_command is not None else None,
        versions={"llenergymeasure": __version__, "python": platform.python_version()},
        created_at=datetime.now(timezone.utc),
        launcher_host=socket.gethostname(),
        launcher_pid=os.getpid(),
    )
    write_model(manifest_path(experiment_dir), manifest)
    return manifest


def claim_experiment(
    layout: ResultsLayout, config_name: str, experiment_id: str | None = None
) -> tuple[str, Path]:
    """Create the new, empty directory `raw/<id>/` of an experiment, never one another run holds.

    Args:
        layout: the results root.
        config_name: the config's name, the start of a fresh id.
        experiment_id: the id to create; default: a fresh one.

    Returns:
        The id and its directory, created exclusively: of two runs that want the same
        directory only one gets it. A fresh id that another run took is drawn again.

    Raises:
        ResultsError: the given id exists already, or no fresh id was free.

    """
    if experiment_id is not None:
        experiment_dir = _make_exclusive(layout, experiment_id)
        if experiment_dir is None:
            raise ResultsError(
                f"{layout.experiment_dir(experiment_id)} exists already; "
                "choose another experiment id"
            )
        return experiment_id, experiment_dir
    for _ in range(ID_ATTEMPTS):
        experiment_id = new_experiment_id(config_name)
        experiment_dir = _make_exclusive(layout, experiment_id)
        if experiment_dir is not None:
            return experiment_id, experiment_dir
    raise ResultsError(f"{layout.raw_root}: no free experiment id after {ID_ATTEMPTS} tries")


def _make_exclusive(layout: ResultsLayout, experiment_id: str) -> Path | None:
    """Create `raw/<id>/`; None when it exists already."""
    experiment_dir = layout.experiment_dir(experiment_id)
    try:
        experiment_dir.parent.mkdir(parents=True, exist_ok=True)
        experiment_dir.mkdir(exist_ok=False)
    except FileExistsError:
        return None
    except OSError as exc:
        raise StorageError(f"{describe_os_error(exc)} while creating {experiment_dir}") from None
    return experiment_dir


def read_manifest(experiment_dir: Path) -> ExperimentManifest:
    """The manifest of an experiment directory (a clear error when absent or broken)."""
    return read_model(manifest_path(experiment_dir), ExperimentManifest)


def set_status(experiment_dir: Path, status: ExperimentStatus, error: str | None = None) -> None:
    """Record how the experiment ended, and for a run that failed, the error line."""
    manifest = read_manifest(experiment_dir)
    update: dict[str, object] = {"status": status}
    if error is not None:
        update["error"] = redact(error)
    write_model(manifest_path(experiment_dir), manifest.model_copy(update=update))


def record_end(experiment_dir: Path, status: ExperimentStatus, error: str | None = None) -> None:
    """`set_status` on the way out of a failed or interrupted run: never masks its error.

    When the manifest cannot be updated (the disk that failed the run is still full),
    a warning says so and the error that ended the run is the one reported.

    Args:
        experiment_dir: `raw/<id>`.
        status: `failed` or `interrupted`.
        error: the one line that ended the run (shown by `llem results show`).

    """
    try:
        set_status(experiment_dir, status, error)
    except LlemError as exc:
        logger.warning(f"could not mark {experiment_dir} {status}: {exc}")


def failure_line(exc: BaseException) -> str:
    """The line a failed run stores in its manifest: a user error's message, else its type too."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(exc, LlemError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
