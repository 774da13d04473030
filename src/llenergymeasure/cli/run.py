"""`llem run CONFIG`: one experiment, with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from llenergymeasure.cli.console import console, enable_logging, quiet_third_party
from llenergymeasure.cli.summary import print_summary


def run(
    config_path: Path = typer.Argument(..., help="Experiment YAML file."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a field: --set generation.batch_size=8 (repeatable)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Run one experiment and aggregate it."""
    from llenergymeasure.config import load_config

    config = load_config(config_path, overrides)
    enable_logging(verbose)
    quiet_third_party()
    from llenergymeasure.orchestration.launcher import run_experiment

    console.print(f"[bold]llem[/] running [cyan]{config.name}[/] with {config.model.name}")
    with _progress() as progress:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=max(total, 1))
            progress.update(tasks[phase], completed=done, total=max(total, 1))

        outcome = run_experiment(config, launch_command=sys.argv, progress=report)
    print_summary(outcome.aggregated, outcome.experiment_dir, outcome.aggregated_path)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
