"""Listing and loading experiments under a results root."""

from __future__ import annotations

import shutil
from typing import Literal

from llenergymeasure.domain.experiment import (
    AggregatedResult,
    ExperimentManifest,
    ExperimentResult,
    ExperimentStatus,
)
from llenergymeasure.errors import ResultsError, StorageError
from llenergymeasure.fileio import describe_os_error
from llenergymeasure.results.layout import ResultsLayout, manifest_path, read_model
from llenergymeasure.results.verification import run_state

ShownStatus = ExperimentStatus | Literal["died"]


def list_experiments(layout: ResultsLayout) -> list[ExperimentResult]:
    """Every experiment with a readable manifest, newest first; unreadable ones skipped."""
    if not layout.raw_root.is_dir():
        return []
    found = []
    for path in layout.raw_root.iterdir():
        try:
            found.append(load_experiment(layout, path.name))
        except ResultsError:
            continue
    return sorted(found, key=lambda e: e.manifest.created_at, reverse=True)


def load_experiment(layout: ResultsLayout, experiment_id: str) -> ExperimentResult:
    """Manifest plus aggregate (None while the experiment is not aggregated)."""
    manifest = read_model(manifest_path(layout.experiment_dir(experiment_id)), ExperimentManifest)
    aggregated_file = layout.aggregated_path(experiment_id)
    aggregated = read_model(aggregated_file, AggregatedResult) if aggregated_file.exists() else None
    return ExperimentResult(manifest=manifest, aggregated=aggregated)


def load_aggregated_results(layout: ResultsLayout) -> tuple[list[AggregatedResult], list[str]]:
    """Every readable `aggregated/*.json`, oldest window first; and why others were skipped."""
    results, skipped = [], []
    paths = sorted(layout.aggregated_root.glob("*.json")) if layout.aggregated_root.is_dir() else []
    for path in paths:
        try:
            results.append(read_model(path, AggregatedResult))
        except ResultsError as exc:
            skipped.append(str(exc))
    return sorted(results, key=lambda r: r.inference_start_unix_s), skipped


def shown_status(manifest: ExperimentManifest) -> ShownStatus:
    """The status to show: `died` for a `running` manifest whose run is known to have ended.

    A run killed with SIGKILL cannot record its end, so its manifest says `running`
    for ever; the launcher it names (`launcher_host`, `launcher_pid`) tells it apart on
    the same host. From another host, or without a launcher, `running` is shown as it is.
    The manifest itself is not changed.
    """
    if manifest.status == "running" and run_state(manifest) == "ended":
        return "died"
    return manifest.status


def prunable_experiments(
    layout: ResultsLayout, statuses: set[ShownStatus]
) -> list[ExperimentResult]:
    """The experiments whose shown status is one of `statuses` (never completed or running).

    Raises:
        ResultsError: `statuses` names completed or running.

    """
    kept = statuses & {"completed", "running"}
    if kept:
        raise ResultsError(f"prune never removes {' or '.join(sorted(kept))} experiments")
    return [e for e in list_experiments(layout) if shown_status(e.manifest) in statuses]


def remove_experiment(layout: ResultsLayout, experiment: ExperimentResult) -> list[str]:
    """Remove `raw/<id>/` and `aggregated/<id>.json` of a failed, interrupted or dead run.

    The status is read again first: a run that completed meanwhile is kept.

    Returns:
        The paths removed.

    Raises:
        ResultsError: the experiment is now completed or running.
        StorageError: a file could not be removed.

    """
    experiment_id = experiment.manifest.experiment_id
    status = shown_status(load_experiment(layout, experiment_id).manifest)
    if status in ("completed", "running"):
        raise ResultsError(f"{experiment_id} is {status} now; not removed")
    removed = []
    targets = [layout.experiment_dir(experiment_id), layout.aggregated_path(experiment_id)]
    for path in targets:
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
            else:
                continue
        except OSError as exc:
            raise StorageError(f"{describe_os_error(exc)} while removing {path}") from None
        removed.append(str(path))
    return removed
