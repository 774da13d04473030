"""`llem config validate|show FILE`."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from llenergymeasure.cli.console import console

app = typer.Typer(help="Check and display experiment configs.", no_args_is_help=True)


@app.command("validate")
def validate(
    config_path: Path = typer.Argument(..., help="Experiment YAML file."),
    overrides: list[str] = typer.Option([], "--set", help="dotted.path=value (repeatable)."),
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
    config_path: Path = typer.Argument(..., help="Experiment YAML file."),
    overrides: list[str] = typer.Option([], "--set", help="dotted.path=value (repeatable)."),
) -> None:
    """Print the resolved config, every default filled in, as YAML."""
    from llenergymeasure.config import load_config

    config = load_config(config_path, overrides)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
