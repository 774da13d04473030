"""`llem run --metrics-port`: a real run on the tiny Llama, scraped over HTTP while it runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.samples import Sample

from llenergymeasure.orchestration.launcher import free_port

from llem_testing import run_llem_here, scrape_metrics, tiny_config_dict, write_yaml

Scrape = dict[str, list[Sample]]


def value(scrape: Scrape, family: str, **labels: str) -> float:
    (sample,) = [s for s in scrape[family] if all(s.labels.get(k) == v for k, v in labels.items())]
    return sample.value


def scrape_while_running(proc: subprocess.Popen, port: int) -> list[Scrape]:
    """Every scrape that carried the energy window's figures, until the run ended."""
    scrapes = []
    while proc.poll() is None:
        figures = scrape_metrics(port)
        if figures is not None and figures.get("llem_energy_joules"):
            scrapes.append(figures)
        time.sleep(0.2)
    return scrapes


def test_energy_and_tokens_grow_between_scrapes_during_a_run(tmp_path: Path) -> None:
    config = write_yaml(
        tmp_path / "tiny.yaml",
        tiny_config_dict(
            tmp_path / "results",
            # Long enough for several of the once-a-second reports on a quiet machine too.
            prompts={"num_prompts": 24, "truncate": True},
            generation={"max_new_tokens": 160, "min_new_tokens": 160, "batch_size": 1},
        ),
    )
    port = free_port()
    command = [sys.executable, "-m", "llenergymeasure", "run", str(config)]
    with (tmp_path / "out.txt").open("w") as out:
        proc = subprocess.Popen(
            [*command, "--metrics-port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "120"},
        )
        scrapes = scrape_while_running(proc, port)
    assert proc.wait(timeout=300) == 0, (tmp_path / "out.txt").read_text()
    assert f"metrics: http://127.0.0.1:{port}/metrics" in (tmp_path / "out.txt").read_text()
    assert len(scrapes) >= 2, f"{len(scrapes)} scrape(s) with the window's figures"
    first, last = scrapes[0], scrapes[-1]
    cpu = {"device": "cpu", "component": "cpu", "method": "power_integral"}
    assert value(last, "llem_energy_joules", **cpu) > value(first, "llem_energy_joules", **cpu)
    counted = [s for s in scrapes if s["llem_output_tokens"]]
    assert len(counted) >= 2, "tokens are shown once the engine has counted some"
    assert value(counted[-1], "llem_output_tokens") > value(counted[0], "llem_output_tokens")
    # While the window is open, power per device, labelled with how it is known.
    powered = [s for s in scrapes if s.get("llem_power_watts")]
    assert powered, "no scrape showed power"
    (power,) = powered[0]["llem_power_watts"]
    assert power.labels["device"] == "cpu" and power.labels["method"] == "estimate"
    assert power.value > 0
    assert value(powered[0], "llem_requests_planned") == 24
    assert value(powered[0], "llem_experiment_phase", phase="inference") == 1
    assert scrape_metrics(port) is None, "the server ends with the run"


def test_a_port_in_use_is_a_user_error_before_anything_is_created(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", tiny_config_dict(tmp_path / "results"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_llem_here("run", config, "--metrics-port", str(port))
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--metrics-port {port}" in lines[0], err
    assert "Traceback" not in err
    assert not (tmp_path / "results").exists(), "nothing may be created"


def test_a_metrics_host_without_a_port_is_a_user_error(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "tiny.yaml", tiny_config_dict(tmp_path / "results"))
    code, _, err = run_llem_here("run", config, "--metrics-host", "0.0.0.0")
    assert code == 2 and "--metrics-host 0.0.0.0" in err, err
    assert not (tmp_path / "results").exists()
