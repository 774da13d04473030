from __future__ import annotations

from pathlib import Path

import pytest

from llenergymeasure.config import load_config
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.errors import ConfigError

from llem_testing import tiny_config_dict, write_yaml


def test_defaults_fill_every_section(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", {"name": "x", "model": {"name": "builtin:tiny-llama"}})
    config = load_config(path)
    assert config.model.trust_remote_code is False
    assert config.generation.batch_size == 1
    assert config.measurement.energy.backend == "auto"
    assert config.measurement.energy.sample_interval_ms == 100
    assert config.measurement.thermal_floor.mode == "sleep"
    assert config.measurement.thermal_floor.seconds is None
    assert config.processes == 1


def test_overrides_take_precedence_and_parse_scalars(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path))
    config = load_config(
        path,
        ["generation.batch_size=8", "generation.do_sample=true", "measurement.energy.backend=none"],
    )
    assert config.generation.batch_size == 8
    assert config.generation.do_sample is True
    assert config.measurement.energy.backend == "none"


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"generation": {"batch_sise": 4}}, "generation.batch_sise: unknown field"),
        ({"generation": {"batch_size": "many"}}, "generation.batch_size: Input should be"),
        ({"generation": {"batch_size": 0}}, "generation.batch_size: Input should be greater"),
        ({"measurement": {"energy": {"sample_interval_ms": 0}}}, "sample_interval_ms"),
        ({"prompts": {"num_prompts": 10**9}}, "prompts.num_prompts"),
        ({"model": {"dtype": "float8"}}, "model.dtype"),
        ({"generation": {"min_new_tokens": 9, "max_new_tokens": 4}}, "min_new_tokens (9) exceeds"),
        ({"name": "../escape"}, "name: String should match pattern"),
        ({"measurement": {"thermal_floor_s": 60}}, "measurement.thermal_floor_s: unknown field"),
        (
            {"measurement": {"thermal_floor": {"mode": "stable_temperature", "seconds": 5}}},
            "seconds applies to mode sleep",
        ),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, patch: dict, expected: str) -> None:
    data = tiny_config_dict(tmp_path)
    for key, value in patch.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = write_yaml(tmp_path / "bad.yaml", data)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_unknown_override_path_is_reported(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path))
    with pytest.raises(ConfigError, match="generation.beam_width: unknown field"):
        load_config(path, ["generation.beam_width=4"])


def test_override_without_equals_is_refused(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", tiny_config_dict(tmp_path))
    with pytest.raises(ConfigError, match="expected dotted.path=value"):
        load_config(path, ["generation.batch_size"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: [unclosed", "invalid YAML"),
        ("- a\n- b\n", "expected a mapping"),
        ("!!python/object/apply:os.system ['true']", "invalid YAML"),
    ],
)
def test_malformed_yaml_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_example_configs_are_valid() -> None:
    paths = sorted(Path(__file__).resolve().parents[3].glob("configs/examples/*.yaml"))
    assert paths, "no example configs found"
    for path in paths:
        assert isinstance(load_config(path), ExperimentConfig), path


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for k in range(1, 9):
        lines.append(f"a{k}: &a{k} [{', '.join(['*a' + str(k - 1)] * 10)}]")
    lines.append("name: bomb")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    with pytest.raises(ConfigError, match="alias bomb"):
        load_config(path)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("name: x\n" + "# padding\n" * 120_000)
    with pytest.raises(ConfigError, match="larger than"):
        load_config(path)


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"\xff\xfe\x00\x01name")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)
