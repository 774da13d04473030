"""Consoles and logging for the CLI (the library itself stays silent)."""

from __future__ import annotations

import sys

from loguru import logger
from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def enable_logging(verbose: bool = False) -> None:
    """Route llem's log lines through the rich console, above any progress bar."""
    logger.remove()
    logger.enable("llenergymeasure")
    level = "DEBUG" if verbose else "INFO"
    logger.add(
        lambda message: err_console.print(message.rstrip("\n"), markup=False, highlight=False),
        level=level,
        format="{time:HH:mm:ss} {level: <7} {message}",
    )
    if not sys.stderr.isatty():
        err_console.soft_wrap = True


def quiet_third_party() -> None:
    """Silence transformers' own progress bars and advisory messages."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
