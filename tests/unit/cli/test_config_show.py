"""`llem config show [FILE] [--set k=v]`: the resolved config, every default filled in."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from llenergymeasure import defaults
from llenergymeasure.config.loader import load_config, validate_config
from llenergymeasure.config.models import ExperimentConfig

from llem_testing import run_llem_here, tiny_config_dict, write_yaml


def shown(*args: str | Path) -> tuple[dict, list[str]]:
    code, stdout, stderr = run_llem_here("config", "show", *args)
    assert code == 0, stderr
    comments = [line for line in stdout.splitlines() if line.startswith("#")]
    return yaml.safe_load(stdout), comments


def leaves(data: dict, prefix: str = "") -> dict[str, object]:
    found = {}
    for key, value in data.items():
        if isinstance(value, dict):
            found.update(leaves(value, f"{prefix}{key}."))
        else:
            found[f"{prefix}{key}"] = value
    return found


def field_paths(model: type = ExperimentConfig, prefix: str = "") -> set[str]:
    """Every leaf field of the config model, as a dotted path."""
    paths = set()
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            paths |= field_paths(sub, f"{prefix}{name}.")
        else:
            paths.add(f"{prefix}{name}")
    return paths


def test_without_a_file_every_field_is_shown_with_its_default() -> None:
    data, _ = shown()
    values = leaves(data)
    assert set(values) == field_paths()
    assert values["name"] is None and values["model.name"] is None  # no default
    named = validate_config({**data, "name": "x", "model": {**data["model"], "name": "x"}})
    assert named == validate_config({"name": "x", "model": {"name": "x"}})
    assert values["results_dir"] == str(defaults.RESULTS_DIR)


def test_the_comments_give_the_defaults_applied_where_a_field_is_null() -> None:
    _, comments = shown()
    text = "\n".join(comments)
    assert f"{defaults.GPU_THERMAL_FLOOR_S:g} s on a GPU" in text
    assert (
        f"{defaults.DEFAULT_SOCKET_TDP_W:g} W per {defaults.DEFAULT_THREADS_PER_SOCKET} threads"
        in text
    )
    assert f"{defaults.BOOTSTRAP_RESAMPLES} bootstrap resamples" in text


def test_overrides_apply_with_or_without_a_file(tmp_path: Path) -> None:
    data, _ = shown("--set", "generation.batch_size=4", "--set", "name=mine")
    assert data["generation"]["batch_size"] == 4 and data["name"] == "mine"
    assert data["model"]["name"] is None
    config = write_yaml(tmp_path / "tiny.yaml", tiny_config_dict(tmp_path / "results"))
    data, _ = shown(config, "--set", "generation.batch_size=2")
    written = write_yaml(tmp_path / "resolved.yaml", data)
    assert load_config(written) == load_config(config, ["generation.batch_size=2"])


def test_a_bad_override_is_one_line_naming_it() -> None:
    code, _, stderr = run_llem_here("config", "show", "--set", "generation.top_p=3")
    assert code == 2
    assert stderr.strip().startswith("error: --set generation.top_p=3: generation.top_p")
    assert len(stderr.strip().splitlines()) == 1
