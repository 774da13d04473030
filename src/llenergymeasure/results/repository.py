"""Listing and loading experiments under a results root."""

from __future__ import annotations

from typing import Literal

from llenergymeasure.domain.experiment import (
    AggregatedResult,
    ExperimentManifest,
    ExperimentResult,
    ExperimentStatus,
)
from llenergymeasure.errors import ResultsError
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
