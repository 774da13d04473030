"""Consoles and logging for the CLI (the library itself stays silent)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from llenergymeasure.redaction import redact

console = Console()
# Errors and log lines are never wrapped: one message, one line, greppable.
err_console = Console(stderr=True, soft_wrap=True)


def enable_logging(verbose: bool = False) -> None:
    """Route llem's log lines through the rich console, above any progress bar.

    Tokens are masked in every line (`redaction`).
    """
    from llenergymeasure.log import logger

    logger.remove()
    logger.enable("llenergymeasure")
    level = "DEBUG" if verbose else "INFO"
    logger.add(
        lambda message: err_console.print(
            redact(message.rstrip("\n")), markup=False, highlight=False
        ),
        level=level,
        format="{time:HH:mm:ss} {level: <7} {message}",
    )


def quiet_third_party() -> None:
    """Silence transformers' own progress bars and advisory messages."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def progress_bars(*extra: ProgressColumn) -> Progress:
    """The progress display of long commands: phase, bar, count, elapsed (and `extra`)."""
    return Progress(
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
        console=console,
        transient=False,
    )
