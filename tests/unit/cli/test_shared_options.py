"""Options that mean the same in every command: read from the real command tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.cli import command
from llenergymeasure.config.models import ExperimentConfig

from llem_testing import run_llem_here


def commands(cmd, words: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    """Every leaf command of the tree, with the words that call it."""
    subs = getattr(cmd, "commands", {})
    if not subs:
        return [(words, cmd)]
    return [found for name, sub in subs.items() for found in commands(sub, (*words, name))]


def options_named(flag: str) -> dict[str, object]:
    return {
        " ".join(words): param
        for words, cmd in commands(command())
        for param in cmd.params
        if flag in getattr(param, "opts", [])
    }


def test_every_results_dir_option_is_one_option_with_the_configs_default() -> None:
    found = options_named("--results-dir")
    expected = {
        "aggregate", "export", "results compare", "results list", "results show",
        "results prune", "plot power", "plot campaign", "report",
    }  # fmt: skip
    assert expected <= set(found), sorted(found)
    config_default = ExperimentConfig.model_fields["results_dir"].default
    assert {Path(p.default) for p in found.values()} == {config_default}
    assert len({p.help for p in found.values()}) == 1, {w: p.help for w, p in found.items()}


def test_csv_is_one_flag_everywhere() -> None:
    found = options_named("--csv")
    assert {"export", "results compare"} <= set(found), sorted(found)
    assert all(p.is_flag for p in found.values()), sorted(w for w, p in found.items())
    assert len({p.help for p in found.values()}) == 1


def experiment_commands() -> list[str]:
    """Commands whose first argument is an experiment."""
    return [
        " ".join(words)
        for words, cmd in commands(command())
        for param in cmd.params[:1]
        if param.param_type_name == "argument" and "results/raw/<id>" in (param.help or "")
    ]


def test_the_commands_that_take_an_experiment_say_id_or_path() -> None:
    found = set(experiment_commands())
    expected = {"aggregate", "export", "results show", "results compare", "plot power", "report"}
    assert expected <= found


@pytest.mark.parametrize("words", ["aggregate", "results show", "plot power", "report"])
def test_an_unknown_id_names_the_results_root_it_looked_in(tmp_path: Path, words: str) -> None:
    code, _, stderr = run_llem_here(*words.split(), "nope_1", "--results-dir", tmp_path)
    assert code == 2
    assert stderr.strip() == (
        f"error: no experiment nope_1 under {tmp_path}: pass --results-dir, or the path "
        "results/raw/<id>"
    )


@pytest.mark.parametrize("words", ["aggregate", "results show", "plot power", "export", "report"])
def test_a_path_that_is_no_experiment_is_refused(tmp_path: Path, words: str) -> None:
    not_one = tmp_path / "raw" / "empty"
    not_one.mkdir(parents=True)
    args = [*words.split(), not_one] + (["--csv"] if words == "export" else [])
    code, _, stderr = run_llem_here(*args)
    assert code == 2
    assert f"error: {not_one}: not an experiment directory" in stderr


@pytest.mark.parametrize("words", ["aggregate", "results show", "plot power", "export", "report"])
def test_a_copied_experiment_outside_raw_is_refused_not_read_from_raw(
    tmp_path: Path, words: str
) -> None:
    """Its root would be taken as the grandparent: results/raw/<id>, the original."""
    for where in ("raw", "backup"):
        copy = tmp_path / "results" / where / "tiny_20260101T000000Z_abcd"
        copy.mkdir(parents=True)
        (copy / "experiment.json").write_text("{}")
    args = [*words.split(), copy] + (["--csv"] if words == "export" else [])
    code, _, stderr = run_llem_here(*args)
    assert code == 2
    assert f"error: {copy}: an experiment directory is read where llem writes it" in stderr
    assert f"this one is in {copy.parent}" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaign", "grid", "--out", "t.csv"], "--out names the CSV file: add --csv"),
        (["x_1", "--csv", "sweep.csv"], "--csv is a flag: name the file with --csv --out FILE"),
    ],
    ids=["--out without --csv", "--csv given a file"],
)
def test_compare_says_how_csv_is_used(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, stderr = run_llem_here("results", "compare", *args, "--results-dir", tmp_path)
    assert (code, stderr.strip()) == (2, f"error: {message}")
    assert not (tmp_path / "exports").exists() and not Path("t.csv").exists()


def test_compare_refuses_experiments_of_two_results_roots(tmp_path: Path) -> None:
    for root in ("a", "b"):
        experiment_dir = tmp_path / root / "raw" / "x_1"
        experiment_dir.mkdir(parents=True)
        (experiment_dir / "experiment.json").write_text("{}")
    code, _, stderr = run_llem_here(
        "results", "compare", tmp_path / "a" / "raw" / "x_1", tmp_path / "b" / "raw" / "x_1"
    )
    assert code == 2
    assert stderr.strip() == (
        f"error: compare experiments of one results root: {tmp_path / 'a'}, {tmp_path / 'b'}"
    )
