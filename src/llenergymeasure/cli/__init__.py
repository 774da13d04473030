"""The `llem` command: a thin root that registers one module per command."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape

from llenergymeasure.cli import aggregate, campaign, config, env, export, plot, report, results, run
from llenergymeasure.cli.console import err_console
from llenergymeasure.errors import LlemError
from llenergymeasure.redaction import redact

app = typer.Typer(
    name="llem",
    help="Measure what LLM inference costs: energy, throughput, latency, FLOPs, memory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _version(show: bool) -> None:
    if show:
        from llenergymeasure import __version__

        typer.echo(f"llem {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version of llem and exit.",
    ),
) -> None:
    """Measure what LLM inference costs: energy, throughput, latency, FLOPs, memory."""


app.command("run")(run.run)
app.command("aggregate")(aggregate.aggregate)
app.command("export")(export.export)
app.command("campaign")(campaign.campaign)
app.command("env")(env.env)
app.command("report")(report.report)
app.add_typer(config.app, name="config")
app.add_typer(results.app, name="results")
app.add_typer(plot.app, name="plot")

USER_ERROR = 2


def command() -> Any:
    """The `llem` command tree, its flags shown in `--help` without a value type.

    typer labels every option with its type, `--dry-run <bool>` too, which reads as if
    the flag took a value (`--dry-run true` is a usage error). A flag's metavar is set
    empty, so that its help shows the flag alone.
    """
    root = typer.main.get_command(app)
    _plain_flags(root)
    return root


def _plain_flags(cmd: Any) -> None:
    """Empty the metavar of every flag (and `--help`) of `cmd` and its subcommands.

    typer ships its own copy of click, so the parts are told by what they have.
    """
    help_option = cmd.get_help_option(typer.Context(cmd))
    for param in [*cmd.params, *([help_option] if help_option else [])]:
        if getattr(param, "is_flag", False):
            param.metavar = ""
    for sub in getattr(cmd, "commands", {}).values():
        _plain_flags(sub)


def main() -> None:
    """Entry point: a user error is one line on stderr and exit code 2."""
    try:
        command()(prog_name="llem")
    except LlemError as exc:
        err_console.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", highlight=False)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
