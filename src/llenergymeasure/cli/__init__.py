"""The `llem` command: a thin root that registers one module per command."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from llenergymeasure.cli import aggregate, campaign, config, env, export, plot, results, run
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
app.command("run")(run.run)
app.command("aggregate")(aggregate.aggregate)
app.command("export")(export.export)
app.command("campaign")(campaign.campaign)
app.command("env")(env.env)
app.add_typer(config.app, name="config")
app.add_typer(results.app, name="results")
app.add_typer(plot.app, name="plot")

USER_ERROR = 2


def main() -> None:
    """Entry point: a user error is one line on stderr and exit code 2."""
    try:
        app()
    except LlemError as exc:
        err_console.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", highlight=False)
        sys.exit(USER_ERROR)
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        sys.exit(130)
