"""`llem run CONFIG`: one experiment, with progress and a summary."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from llenergymeasure.cli.console import (
    console,
    enable_logging,
    err_console,
    progress_bars,
    quiet_third_party,
)
from llenergymeasure.cli.metrics import (
    METRICS_HOST,
    METRICS_PORT,
    check_metrics_options,
    live_metrics,
)
from llenergymeasure.cli.summary import print_summary

if TYPE_CHECKING:
    from llenergymeasure.config.models import ExperimentConfig
    from llenergymeasure.orchestration.launcher import ExperimentOutcome, LaunchOptions
    from llenergymeasure.orchestration.live_metrics import LiveMetrics


def run(
    config_path: Path = typer.Argument(..., help="Experiment YAML file."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a field: --set generation.batch_size=8 (repeatable)."
    ),
    processes: int | None = typer.Option(
        None,
        "--processes",
        "-n",
        help="Processes (one per GPU; several gloo processes on the CPU); "
        "the same as --set processes=N.",
    ),
    accelerate_config: Path | None = typer.Option(
        None,
        "--accelerate-config",
        help="accelerate config file for several processes (see launch/).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the launch command and the resolved config; run nothing."
    ),
    metrics_port: int | None = METRICS_PORT,
    metrics_host: str = METRICS_HOST,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Run one experiment and aggregate it.

    SIGINT (Ctrl-C) or SIGTERM stops it: exit code 130 or 143, the experiment marked
    interrupted, the files already written kept.
    """
    from llenergymeasure.config import load_config
    from llenergymeasure.orchestration.launcher import ConfigSource, LaunchOptions

    if processes is not None:
        overrides = [*overrides, f"processes={processes}"]
    config = load_config(config_path, overrides)
    check_metrics_options(metrics_port, metrics_host)
    enable_logging(verbose)
    launch = LaunchOptions(ConfigSource(config_path, tuple(overrides)), accelerate_config, verbose)
    if dry_run:
        _print_plan(config, launch)
        return
    quiet_third_party()
    with live_metrics(metrics_port, metrics_host) as live:
        outcome = _run(config, launch, live)
    print_summary(outcome.aggregated, outcome.experiment_dir, outcome.aggregated_path)


def _run(
    config: ExperimentConfig, launch: LaunchOptions, live: LiveMetrics | None
) -> ExperimentOutcome:
    from llenergymeasure.errors import Interrupted
    from llenergymeasure.orchestration.launcher import run_experiment

    console.print(
        f"[bold]llem[/] running [cyan]{escape(config.name)}[/] with {escape(config.model.name)}"
        + (f" in {config.processes} processes" if config.processes > 1 else "")
    )
    with progress_bars() as progress:
        tasks: dict[str, int] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=max(total, 1))
            progress.update(tasks[phase], completed=done, total=max(total, 1))

        try:
            outcome = run_experiment(
                config,
                launch=launch,
                launch_command=sys.argv,
                progress=report,
                output=lambda line: err_console.print(line, markup=False, highlight=False),
                live=live,
            )
        except Interrupted as exc:
            progress.stop()
            err_console.print(
                f"interrupted by {exc.signal_name}: {exc}", markup=False, highlight=False
            )
            raise typer.Exit(exc.exit_code) from None
    return outcome


def _print_plan(config: ExperimentConfig, launch: LaunchOptions) -> None:
    import yaml

    from llenergymeasure.orchestration.launcher import plan_experiment

    command = plan_experiment(config, launch)
    if command is None:
        console.print("# one process: runs inside llem itself, no launch command", highlight=False)
    else:
        console.print(
            "# launch command (<new-experiment-id>: the id is drawn when the run starts)",
            markup=False,
            highlight=False,
        )
        console.print(shlex.join(command), markup=False, highlight=False, soft_wrap=True)
    console.print("# resolved config", highlight=False)
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    console.print(text, markup=False, highlight=False, soft_wrap=True, end="")
