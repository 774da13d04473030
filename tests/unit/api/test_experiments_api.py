"""llem.load_config, run_experiment, aggregate and load_result on a real tiny experiment."""

from __future__ import annotations

from pathlib import Path

import pytest

import llenergymeasure as llem
from llenergymeasure.errors import ConfigError, ResultsError

from llem_testing import run_llem_here, tiny_config_dict, write_yaml


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("api")
    config_path = write_yaml(root / "tiny.yaml", tiny_config_dict(root / "results"))
    return config_path, llem.run_experiment(config_path, overrides=["prompts.num_prompts=4"])


def test_load_config_applies_overrides(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path / "results"))
    config = llem.load_config(path, overrides=["generation.max_new_tokens=3"])
    assert config.generation.max_new_tokens == 3 and config.name == "tiny"
    with pytest.raises(ConfigError, match="config file not found"):
        llem.load_config(tmp_path / "missing.yaml")


def test_run_experiment_from_a_path_with_overrides(finished) -> None:
    _, outcome = finished
    assert outcome.aggregated.experiment_id == outcome.experiment_id
    assert outcome.aggregated_path.is_file()
    assert outcome.aggregated.num_requests == 4  # the override, not the file's 12


def test_load_result_by_id_directory_or_file(finished) -> None:
    config_path, outcome = finished
    results_dir = config_path.parent / "results"
    by_id = llem.load_result(outcome.experiment_id, results_dir=results_dir)
    by_dir = llem.load_result(outcome.experiment_dir)
    by_file = llem.load_result(outcome.aggregated_path)
    assert by_id == by_dir == by_file == outcome.aggregated
    with pytest.raises(ResultsError, match="no experiment tiny_nosuch under"):
        llem.load_result("tiny_nosuch", results_dir=results_dir)


@pytest.mark.parametrize("words", [("results", "show"), ("report",), ("export", "--csv")])
def test_a_command_finds_an_experiment_by_its_aggregate_file(
    finished, words: tuple[str, ...], tmp_path: Path
) -> None:
    _, outcome = finished
    out = {"report": ["--out", tmp_path / "r.html"], "export": ["--out", tmp_path / "x.csv"]}
    code, stdout, stderr = run_llem_here(
        *words[:2], outcome.aggregated_path, *out.get(words[0], [])
    )
    assert code == 0, stderr
    assert outcome.experiment_id in stdout or any(tmp_path.iterdir())


def test_aggregate_reproduces_the_runs_aggregate(finished) -> None:
    _, outcome = finished
    again = llem.aggregate(outcome.experiment_dir)
    assert again.experiment_id == outcome.experiment_id
    assert again.output_tokens == outcome.aggregated.output_tokens
    with pytest.raises(ResultsError, match="no such experiment directory"):
        llem.aggregate(outcome.experiment_dir.parent / "nosuch")


def test_a_config_object_runs_and_refuses_overrides(tmp_path: Path) -> None:
    config = llem.load_config(
        write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path / "results"))
    )
    with pytest.raises(ConfigError, match="overrides apply to a config path"):
        llem.run_experiment(config, overrides=["prompts.num_prompts=4"])
