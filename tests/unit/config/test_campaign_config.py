"""Campaign files: expansion of sweeps and lists, orders, and every invalid point at once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llenergymeasure.config.campaign import plan_campaign
from llenergymeasure.errors import ConfigError

from llem_testing import tiny_config_dict, write_yaml


def campaign_file(tmp_path: Path, **fields: Any) -> Path:
    base = tiny_config_dict(tmp_path / "results")
    base.pop("name")
    data = {"campaign_name": "grid", "base": base, **fields}
    return write_yaml(tmp_path / "campaign.yaml", data)


SWEEP = {"generation.batch_size": [1, 2], "generation.max_new_tokens": [4, 8]}


def test_sweep_is_every_combination_first_axis_slowest(tmp_path: Path) -> None:
    plan = plan_campaign(campaign_file(tmp_path, sweep=SWEEP))
    got = [
        (
            c.number,
            c.config.name,
            c.config.generation.batch_size,
            c.config.generation.max_new_tokens,
        )
        for c in plan.configurations
    ]
    assert got == [
        (1, "grid-c1", 1, 4),
        (2, "grid-c2", 1, 8),
        (3, "grid-c3", 2, 4),
        (4, "grid-c4", 2, 8),
    ]
    first = plan.configurations[0]
    assert first.overrides == {"generation.batch_size": 1, "generation.max_new_tokens": 4}
    assert first.label == "generation.batch_size=1, generation.max_new_tokens=4"
    # The rest of the base is kept, and every configuration shares the results root.
    assert first.config.prompts.num_prompts == 12
    assert plan.results_dir == tmp_path / "results"


def test_explicit_experiments_accept_nested_or_dotted_overrides(tmp_path: Path) -> None:
    experiments = [
        {"generation": {"batch_size": 2}},
        {"generation.batch_size": 4, "model.dtype": "float32"},
    ]
    plan = plan_campaign(campaign_file(tmp_path, experiments=experiments, cycles=2))
    assert [c.overrides for c in plan.configurations] == [
        {"generation.batch_size": 2},
        {"generation.batch_size": 4, "model.dtype": "float32"},
    ]
    # A nested override sets one field; it does not replace the whole section.
    assert plan.configurations[0].config.generation.max_new_tokens == 8
    assert len(plan.experiments) == 4


def test_without_sweep_the_base_is_repeated(tmp_path: Path) -> None:
    plan = plan_campaign(campaign_file(tmp_path, cycles=3))
    assert [c.label for c in plan.configurations] == ["base"]
    assert [p.cycle for p in plan.experiments] == [1, 2, 3]


def test_base_can_be_an_experiment_file_beside_the_campaign(tmp_path: Path) -> None:
    write_yaml(tmp_path / "exp.yaml", tiny_config_dict(tmp_path / "results"))
    plan = plan_campaign(campaign_file(tmp_path, base="exp.yaml", sweep=SWEEP))
    assert len(plan.configurations) == 4
    assert plan.configurations[3].config.name == "grid-c4"


def order_of(tmp_path: Path, **fields: Any) -> list[tuple[int, int]]:
    plan = plan_campaign(campaign_file(tmp_path, sweep=SWEEP, cycles=2, **fields))
    assert [p.index for p in plan.experiments] == list(range(8))
    return [(p.configuration.number, p.cycle) for p in plan.experiments]


def test_grouped_runs_every_cycle_of_a_configuration_together(tmp_path: Path) -> None:
    assert order_of(tmp_path, order="grouped") == [
        (1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1), (4, 2),
    ]  # fmt: skip


def test_interleaved_runs_each_cycle_over_every_configuration(tmp_path: Path) -> None:
    assert order_of(tmp_path, order="interleaved") == [
        (1, 1), (2, 1), (3, 1), (4, 1), (1, 2), (2, 2), (3, 2), (4, 2),
    ]  # fmt: skip


def test_shuffled_is_a_seeded_permutation_with_cycles_numbered_in_run_order(
    tmp_path: Path,
) -> None:
    first = order_of(tmp_path, order="shuffled", seed=7)
    assert first == order_of(tmp_path, order="shuffled", seed=7)
    assert first != order_of(tmp_path, order="shuffled", seed=8)
    assert Counter(number for number, _ in first) == {1: 2, 2: 2, 3: 2, 4: 2}
    for number in range(1, 5):
        assert [cycle for n, cycle in first if n == number] == [1, 2]


def test_every_invalid_configuration_is_reported_at_once(tmp_path: Path) -> None:
    path = campaign_file(
        tmp_path,
        sweep={"generation.batch_size": [0, 1, -1], "model.dtype": ["float32", "float64"]},
    )
    with pytest.raises(ConfigError) as info:
        plan_campaign(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: 5 of 6 configurations are invalid: ")
    for label in (
        "[generation.batch_size=0, model.dtype=float32]: generation.batch_size: Input should be "
        "greater than or equal to 1",
        "[generation.batch_size=0, model.dtype=float64]",
        "[generation.batch_size=-1, model.dtype=float32]",
        "[generation.batch_size=-1, model.dtype=float64]",
        "[generation.batch_size=1, model.dtype=float64]: model.dtype: Input should be",
    ):
        assert label in message
    assert "[generation.batch_size=1, model.dtype=float32]" not in message


def test_a_problem_of_the_base_is_said_once(tmp_path: Path) -> None:
    path = write_yaml(
        tmp_path / "c.yaml",
        {"campaign_name": "grid", "base": {"generation": {"batch_size": 2}}, "sweep": SWEEP},
    )
    with pytest.raises(
        ConfigError, match=r"all 4 configurations are invalid: model: Field required$"
    ):
        plan_campaign(path)


def test_an_override_below_a_value_is_reported(tmp_path: Path) -> None:
    path = campaign_file(tmp_path, sweep={"generation.batch_size.x": [1]})
    with pytest.raises(ConfigError, match=r"generation.batch_size.x: batch_size is not a section"):
        plan_campaign(path)


def test_identical_configurations_are_refused(tmp_path: Path) -> None:
    path = campaign_file(tmp_path, sweep={"generation.batch_size": [2, 4, 2]})
    with pytest.raises(ConfigError, match="configurations 1 and 3 are the same experiment"):
        plan_campaign(path)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"sweep": SWEEP, "experiments": [{}]}, "give either sweep or experiments, not both"),
        ({"sweep": {"name": ["a", "b"]}}, "sweep: name: set by the campaign"),
        ({"experiments": [{"results_dir": "elsewhere"}]}, "experiments[1]: results_dir"),
        ({"sweep": {"generation.batch_size": []}}, "give at least one value"),
        ({"sweep": {"generation..batch_size": [1]}}, "is not a dotted path"),
        ({"cycle": 3}, "cycle: unknown field"),
        ({"cycles": 0}, "cycles: Input should be greater than or equal to 1"),
        ({"order": "random"}, "order: Input should be 'grouped', 'interleaved' or 'shuffled'"),
        ({"campaign_name": "../up"}, "campaign_name: String should match pattern"),
        ({"gap_s": -1}, "gap_s: Input should be greater than or equal to 0"),
    ],
)
def test_campaign_fields_are_checked(tmp_path: Path, fields: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        plan_campaign(campaign_file(tmp_path, **fields))
    assert expected in str(info.value)
