"""`--metrics-port` and `--metrics-host` of `llem run` and `llem campaign` (docs/metrics.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from llenergymeasure.cli.console import err_console
from llenergymeasure.errors import ConfigError

if TYPE_CHECKING:
    from llenergymeasure.orchestration.live_metrics import LiveMetrics

METRICS_PORT = typer.Option(
    None,
    "--metrics-port",
    min=1,
    max=65535,
    help="Serve live metrics (Prometheus text format) at http://HOST:PORT/metrics "
    "while the run lasts.",
)
METRICS_HOST = typer.Option(
    "127.0.0.1",
    "--metrics-host",
    help="Address the metrics server listens on. The default serves this machine only; "
    "0.0.0.0 (or another interface's address) serves anyone who can reach it, "
    "unauthenticated.",
)


@contextmanager
def live_metrics(port: int | None, host: str) -> Iterator[LiveMetrics | None]:
    """A metrics server inside the block where `port` is given; None otherwise.

    Raises:
        ConfigError: the port cannot be listened on; raised before the block runs.

    """
    if port is None:
        yield None
        return
    from llenergymeasure.orchestration.live_metrics import LiveMetrics, serve_metrics

    live = LiveMetrics()
    with serve_metrics(live, host, port) as url:
        err_console.print(f"metrics: {url}", markup=False, highlight=False)
        yield live


def check_metrics_options(port: int | None, host: str) -> None:
    """`--metrics-host` without `--metrics-port` is a mistake, said before anything runs."""
    if port is None and host != METRICS_HOST.default:
        raise ConfigError(f"--metrics-host {host}: serves nothing without --metrics-port")
