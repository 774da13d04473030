"""`llem config validate FILE` and `llem config show [FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from llenergymeasure.cli.console import console

app = typer.Typer(help="Check and display experiment configs.", no_args_is_help=True)
SET = typer.Option([], "--set", help="dotted.path=value (repeatable).")
# The fields without a default, and a valid stand-in for each while the defaults are shown.
REQUIRED = {"name": "x", "model.name": "x"}


@app.command("validate")
def validate(
    config_path: Path = typer.Argument(..., help="Experiment YAML file."),
    overrides: list[str] = SET,
    accelerate_config: Path | None = typer.Option(
        None, "--accelerate-config", help="The accelerate config file `llem run` would get."
    ),
) -> None:
    """Exit 0 when the config can run here; otherwise name the field and exit 2.

    Besides the fields, the checks `llem run` makes before it creates anything: the
    prompts, the model, the energy backend, the accelerate config and the processes.
    """
    from llenergymeasure.config import load_config
    from llenergymeasure.orchestration.launcher import ConfigSource, LaunchOptions, check_experiment

    config = load_config(config_path, overrides)
    source = ConfigSource(config_path, tuple(overrides))
    check_experiment(config, LaunchOptions(source, accelerate_config))
    console.print(
        f"{config_path}: valid ({config.name}, model {config.model.name})",
        markup=False,
        highlight=False,
    )


@app.command("show")
def show(
    config_path: Path | None = typer.Argument(
        None, help="Experiment YAML file; without it, the defaults alone.", show_default=False
    ),
    overrides: list[str] = SET,
) -> None:
    """Print the resolved config, every default filled in, as YAML.

    Comments above it say what llem applies where a field is null, and the defaults of
    the analysis commands (`llenergymeasure/defaults.py`).
    """
    import yaml

    from llenergymeasure.config import load_config

    if config_path is None:
        resolved = _defaults(overrides)
    else:
        resolved = load_config(config_path, overrides).model_dump(mode="json")
    text = yaml.safe_dump(resolved, sort_keys=False)
    console.print(
        _notes(config_path is None) + text, markup=False, highlight=False, soft_wrap=True, end=""
    )


def _defaults(overrides: list[str]) -> dict[str, Any]:
    """The config of no file: the defaults (and `overrides`), null where none exists."""
    from llenergymeasure.config.loader import apply_override, set_dotted, validate_config

    data: dict[str, Any] = {}
    labels = {apply_override(data, item): f"--set {item}" for item in overrides}
    missing = [key for key in REQUIRED if key not in labels]
    for key in missing:
        set_dotted(data, key, REQUIRED[key])
    resolved = validate_config(data, source="defaults", overrides=labels).model_dump(mode="json")
    for key in missing:
        set_dotted(resolved, key, None)
    return resolved


def _notes(defaults_only: bool) -> str:
    """YAML comments: the defaults that are not a field's value."""
    from llenergymeasure.defaults import (
        BOOTSTRAP_RESAMPLES,
        BOOTSTRAP_SEED,
        DEFAULT_SOCKET_TDP_W,
        DEFAULT_THREADS_PER_SOCKET,
        GPU_THERMAL_FLOOR_S,
    )

    lines = [
        *(
            [f"# defaults of an experiment config; no default: {', '.join(REQUIRED)}"]
            if defaults_only
            else []
        ),
        "# where a field is null, llem applies:",
        f"#   measurement.thermal_floor.seconds: {GPU_THERMAL_FLOOR_S:g} s on a GPU, "
        "0 on the CPU (mode sleep)",
        "#   measurement.energy.cpu_tdp_w: the CPU model's TDP (bundled table), else "
        f"{DEFAULT_SOCKET_TDP_W:g} W per {DEFAULT_THREADS_PER_SOCKET} threads",
        f"# llem results compare, llem plot campaign: {BOOTSTRAP_RESAMPLES} bootstrap "
        f"resamples, seed {BOOTSTRAP_SEED}",
    ]
    return "\n".join(lines) + "\n"
