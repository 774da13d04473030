"""Every command that takes an experiment takes its id or its directory, on a real run.

One tiny experiment is run into `<tmp>/results`, the default results root relative to
the working directory, so the commands find it by id with no `--results-dir` at all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.orchestration.launcher import ExperimentOutcome, run_experiment

from llem_testing import run_llem_here, tiny_config_dict


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> ExperimentOutcome:
    root = tmp_path_factory.mktemp("arguments") / "results"
    return run_experiment(validate_config(tiny_config_dict(root)))


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def by_id_and_by_path(outcome: ExperimentOutcome, *words: str) -> tuple[tuple, tuple]:
    """The command on the bare id (found under ./results) and on the experiment's path."""
    with working_directory(outcome.experiment_dir.parents[2]):
        by_id = run_llem_here(*words, outcome.experiment_id)
    with working_directory(outcome.experiment_dir.parents[3]):
        by_path = run_llem_here(*words, outcome.experiment_dir)
    return by_id, by_path


@pytest.mark.parametrize("words", [("aggregate",), ("results", "show")], ids=" ".join)
def test_the_summary_is_the_same_by_id_and_by_path(
    outcome: ExperimentOutcome, words: tuple[str, ...]
) -> None:
    (id_code, id_out, id_err), (path_code, path_out, path_err) = by_id_and_by_path(outcome, *words)
    assert (id_code, path_code) == (0, 0), id_err + path_err
    summary = id_out.split("raw results:")[0]
    assert outcome.experiment_id in summary and "energy method" in summary
    assert path_out.split("raw results:")[0] == summary
    assert str(outcome.aggregated_path) in "".join(path_out.split())  # the console wraps it


def test_plot_power_reaches_the_experiment_both_ways(outcome: ExperimentOutcome) -> None:
    """A CPU run has no power readings: the refusal proves the experiment was found."""
    (id_code, _, id_err), (path_code, _, path_err) = by_id_and_by_path(outcome, "plot", "power")
    assert (id_code, path_code) == (2, 2)
    assert "no power readings" in id_err and "no power readings" in path_err


def test_export_csv_by_id_writes_under_the_default_results_root(
    outcome: ExperimentOutcome,
) -> None:
    (id_code, id_out, id_err), (path_code, path_out, _) = by_id_and_by_path(
        outcome, "export", "--csv"
    )
    assert (id_code, path_code) == (0, 0), id_err
    written = Path("results") / "exports" / f"{outcome.experiment_id}.csv"
    assert f"wrote {written} (1 experiment)" in id_out
    assert (outcome.experiment_dir.parents[2] / written).is_file()
    assert str(outcome.experiment_dir.parents[2] / written) in "".join(path_out.split())
