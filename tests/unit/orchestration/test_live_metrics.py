"""The worker->launcher telemetry line and the metrics server, scraped over real HTTP."""

from __future__ import annotations

import urllib.request
from collections import deque

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llenergymeasure.core.live_telemetry import DeviceTelemetry, Telemetry
from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestration.launcher import free_port, route_line
from llenergymeasure.orchestration.live_metrics import CampaignCounts, LiveMetrics, serve_metrics
from llenergymeasure.orchestration.protocol import (
    TelemetryUpdate,
    format_telemetry,
    parse_progress,
    parse_telemetry,
)


def figures(host: str, tokens: int, *devices: tuple[str, float | None, float]) -> Telemetry:
    return Telemetry(
        host,
        tokens,
        tuple(
            DeviceTelemetry(
                name,
                "cpu" if name == "cpu" else "gpu",
                power,
                "estimate" if name == "cpu" else "nvml",
                energy,
            )
            for name, power, energy in devices
        ),
    )


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def test_a_telemetry_line_round_trips_and_is_no_progress_line() -> None:
    telemetry = figures("node-1", 12, ("gpu3", 251.5, 40.25), ("cpu", None, 3.0))
    line = format_telemetry(2, telemetry)
    assert "\n" not in line and line.startswith("[rank 2] telemetry {")
    assert parse_telemetry(line) == TelemetryUpdate(2, telemetry)
    assert parse_progress(line) is None


@pytest.mark.parametrize(
    "line",
    [
        "[rank 0] telemetry {not json}",
        '[rank 0] telemetry {"host": "h"}',
        '[rank 0] telemetry {"host": "h", "output_tokens": 1, "devices": [{"device": "x"}]}',
    ],
)
def test_a_garbled_telemetry_line_is_kept_as_other_output(line: str) -> None:
    assert parse_telemetry(line) is None
    kept: deque[str] = deque()
    updates: list[TelemetryUpdate] = []
    route_line(line, None, lambda _: None, kept, updates.append)
    assert list(kept) == [line] and updates == []


def test_the_launcher_routes_telemetry_lines_to_the_metrics() -> None:
    telemetry = figures("h", 5, ("gpu0", 100.0, 1.0))
    updates: list[TelemetryUpdate] = []
    kept: deque[str] = deque()
    route_line(format_telemetry(1, telemetry), None, lambda _: None, kept, updates.append)
    assert updates == [TelemetryUpdate(1, telemetry)] and not kept


def test_two_processes_on_one_host_count_its_cpu_once_and_sum_tokens() -> None:
    live = LiveMetrics()
    port = free_port()
    with serve_metrics(live, "127.0.0.1", port) as url:
        assert url == f"http://127.0.0.1:{port}/metrics"
        assert scrape(url) == {}, "nothing before an experiment starts"
        live.experiment_started("tiny_1")
        live.progress("inference", 3, 8)
        live.telemetry(TelemetryUpdate(0, figures("h", 40, ("gpu0", 300.0, 90.0), ("cpu", 20, 6))))
        live.telemetry(TelemetryUpdate(1, figures("h", 24, ("gpu1", 200.0, 60.0), ("cpu", 21, 7))))
        got = scrape(url)
    power = {s.labels["device"]: s for s in got["llem_power_watts"]}
    assert {d: s.value for d, s in power.items()} == {"gpu0": 300.0, "gpu1": 200.0, "cpu": 21.0}
    assert power["gpu0"].labels == {
        "experiment_id": "tiny_1",
        "host": "h",
        "device": "gpu0",
        "component": "gpu",
        "method": "nvml",
    }
    energy = {s.labels["device"]: s for s in got["llem_energy_joules"]}
    assert {d: s.value for d, s in energy.items()} == {"gpu0": 90.0, "gpu1": 60.0, "cpu": 7.0}
    assert {s.name for s in energy.values()} == {"llem_energy_joules_total"}
    assert energy["cpu"].labels["method"] == "power_integral"
    (tokens,) = got["llem_output_tokens"]
    assert (tokens.name, tokens.value) == ("llem_output_tokens_total", 64.0)
    assert got["llem_requests_completed"][0].value == 3
    assert got["llem_requests_planned"][0].value == 8
    (phase,) = got["llem_experiment_phase"]
    assert phase.labels["phase"] == "inference" and phase.value == 1


def test_a_closed_window_shows_energy_without_power_and_a_new_experiment_starts_afresh() -> None:
    live = LiveMetrics()
    with serve_metrics(live, "127.0.0.1", free_port()) as url:
        live.experiment_started("first")
        live.telemetry(TelemetryUpdate(0, figures("h", 9, ("gpu0", None, 12.5))))
        closed = scrape(url)
        live.experiment_started("second")
        live.progress("warmup", 1, 4)
        live.campaign(CampaignCounts("sweep", completed=1, failed=0, planned=3))
        second = scrape(url)
    assert closed["llem_power_watts"] == []
    assert closed["llem_energy_joules"][0].value == 12.5
    assert second["llem_energy_joules"] == []
    assert second["llem_output_tokens"] == [], "no tokens counted yet: none shown, not 0"
    assert "llem_requests_planned" not in second, "no inference progress yet"
    assert second["llem_experiment_phase"][0].labels["phase"] == "warmup"
    campaign = {name: s[0].value for name, s in second.items() if name.startswith("llem_campaign")}
    assert campaign == {
        "llem_campaign_experiments_completed": 1,
        "llem_campaign_experiments_failed": 0,
        "llem_campaign_experiments_planned": 3,
    }


def test_a_port_in_use_is_a_config_error() -> None:
    live = LiveMetrics()
    with serve_metrics(live, "127.0.0.1", free_port()) as url:
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with pytest.raises(ConfigError, match=f"--metrics-port {port}: cannot listen"):
            with serve_metrics(LiveMetrics(), "127.0.0.1", port):
                pass
