"""Live metrics of `llem run` and `llem campaign` in Prometheus' text format.

`serve_metrics` serves `http://HOST:PORT/metrics` from a thread of the launcher process
through `prometheus_client`; a `LiveMetrics` holds what it shows, fed by the workers'
progress and telemetry (`protocol`, `core/live_telemetry.py`) and by the campaign.
Each scrape reads the latest figures; nothing is computed for a scrape that no one
makes. The metrics and how each is measured: docs/metrics.md.

Several processes: power and energy are kept per (host, device), so a host's CPU, which
every process on it reports, counts once; output tokens are summed over processes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from llenergymeasure.core.live_telemetry import DeviceTelemetry, TelemetryFn
from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestration.protocol import TelemetryUpdate

INFERENCE_PHASE = "inference"
_DEVICE_LABELS = ["experiment_id", "host", "device", "component", "method"]


@dataclass(frozen=True)
class CampaignCounts:
    """A campaign's experiments: completed and failed so far, and planned in all."""

    campaign: str
    completed: int
    failed: int
    planned: int


class LiveMetrics:
    """The figures the metrics server shows; a `prometheus_client` collector.

    Fed from the launcher's threads (the reader of the workers' output, or the worker
    itself for one process) and read by the server's, under one lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._experiment_id: str | None = None
        self._phase: str | None = None
        self._requests: tuple[int, int] | None = None
        self._devices: dict[tuple[str, str], DeviceTelemetry] = {}
        self._output_tokens: dict[int, int] = {}  # by rank, where the engine counts them
        self._campaign: CampaignCounts | None = None

    def experiment_started(self, experiment_id: str) -> None:
        """A new experiment: the previous one's figures are dropped."""
        with self._lock:
            self._experiment_id = experiment_id
            self._phase = None
            self._requests = None
            self._devices.clear()
            self._output_tokens.clear()

    def progress(self, phase: str, done: int, total: int) -> None:
        """A phase's progress, summed over processes (`protocol.ProgressCondenser`)."""
        with self._lock:
            self._phase = phase
            if phase == INFERENCE_PHASE:
                self._requests = (done, total)

    def telemetry(self, update: TelemetryUpdate) -> None:
        """One process's live figures (each cumulative since its window opened)."""
        with self._lock:
            if update.telemetry.output_tokens is not None:
                self._output_tokens[update.rank] = update.telemetry.output_tokens
            for device in update.telemetry.devices:
                self._devices[(update.telemetry.host, device.device)] = device

    def rank_telemetry(self, rank: int) -> TelemetryFn:
        """The telemetry callback of a worker that runs in this process as `rank`."""
        return lambda telemetry: self.telemetry(TelemetryUpdate(rank, telemetry))

    def campaign(self, counts: CampaignCounts) -> None:
        """Where the campaign stands."""
        with self._lock:
            self._campaign = counts

    def collect(self) -> Iterable[Metric]:
        """The metric families of one scrape."""
        with self._lock:
            yield from self._experiment_metrics()
            yield from self._campaign_metrics()

    def _experiment_metrics(self) -> Iterator[Metric]:
        if self._experiment_id is None:
            return
        exp = self._experiment_id
        power = GaugeMetricFamily(
            "llem_power_watts",
            "Latest power reading per device while the energy window is open (W)",
            labels=_DEVICE_LABELS,
        )
        energy = CounterMetricFamily(
            "llem_energy_joules",
            "Energy per device since the energy window opened: integral of the power "
            "readings (J); the result's energy comes from the energy backends",
            labels=_DEVICE_LABELS,
        )
        for (host, name), device in sorted(self._devices.items()):
            if device.power_w is not None:
                power.add_metric(
                    [exp, host, name, device.component, device.power_method], device.power_w
                )
            energy.add_metric(
                [exp, host, name, device.component, device.energy_method], device.energy_j
            )
        tokens = CounterMetricFamily(
            "llem_output_tokens",
            "Output tokens of the measured requests finished so far, all processes",
            labels=["experiment_id"],
        )
        if self._output_tokens:
            tokens.add_metric([exp], sum(self._output_tokens.values()))
        yield from (power, energy, tokens)
        yield from self._progress_metrics(exp)

    def _progress_metrics(self, exp: str) -> Iterator[Metric]:
        phase = GaugeMetricFamily(
            "llem_experiment_phase",
            "1 for the phase the experiment is in (baseline, warmup, inference, ...)",
            labels=["experiment_id", "phase"],
        )
        if self._phase is not None:
            phase.add_metric([exp, self._phase], 1)
        yield phase
        if self._requests is None:
            return
        done, total = self._requests
        completed = CounterMetricFamily(
            "llem_requests_completed",
            "Measured requests completed, all processes",
            labels=["experiment_id"],
        )
        completed.add_metric([exp], done)
        planned = GaugeMetricFamily(
            "llem_requests_planned", "Measured requests of the experiment", labels=["experiment_id"]
        )
        planned.add_metric([exp], total)
        yield from (completed, planned)

    def _campaign_metrics(self) -> Iterator[Metric]:
        counts = self._campaign
        if counts is None:
            return
        for what, value in (
            ("completed", counts.completed),
            ("failed", counts.failed),
            ("planned", counts.planned),
        ):
            family = GaugeMetricFamily(
                f"llem_campaign_experiments_{what}",
                f"Experiments of the campaign {what}",
                labels=["campaign"],
            )
            family.add_metric([counts.campaign], value)
            yield family


@contextmanager
def serve_metrics(live: LiveMetrics, host: str, port: int) -> Iterator[str]:
    """Serve `live` at http://host:port/metrics inside the block; yields that address.

    Raises:
        ConfigError: nothing can listen there (the port is in use, the address is not
            this machine's); raised before the block runs.

    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(live)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"--metrics-port {port}: cannot listen on {host}:{port} ({reason}); choose a free port"
        ) from None
    try:
        yield f"http://{_url_host(host)}:{port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
