"""`llem campaign` on the tiny model as a user runs it: order, kill, resume, compare, plot.

One campaign (2 axes x 2 values x 2 cycles, interleaved) is started, killed with
SIGKILL after three experiments completed, and resumed; the tests read what it left.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.samples import PowerThermalSample
from llenergymeasure.orchestration.launcher import free_port

from llem_testing import run_llem, scrape_metrics, tiny_config_dict, write_yaml

KILL_AFTER = 3
INTERLEAVED = [(1, 1), (2, 1), (3, 1), (4, 1), (1, 2), (2, 2), (3, 2), (4, 2)]


@dataclass(frozen=True)
class CampaignRun:
    root: Path
    campaign_path: Path
    results_dir: Path
    killed: dict
    raw_before_resume: set[str]
    resumed: subprocess.CompletedProcess
    final: dict
    progress_scraped: list[tuple[float, float, str]]


def campaign_data(results_dir: Path) -> dict:
    base = tiny_config_dict(
        results_dir,
        prompts={"num_prompts": 4},
        measurement={
            "warmup": {"min_prompts": 1, "max_prompts": 2, "window_size": 2},
            "baseline": {"duration_s": 0.1, "cache_ttl_s": 0},
        },
    )
    return {
        "campaign_name": "grid",
        "base": base,
        "sweep": {"generation.batch_size": [1, 2], "generation.max_new_tokens": [4, 8]},
        "cycles": 2,
        "order": "interleaved",
        "gap_s": 0.5,  # the kill lands between experiments or in one, never after the last
    }


def read_manifest(results_dir: Path) -> dict:
    return orjson.loads((results_dir / "campaigns" / "grid" / "manifest.json").read_bytes())


def completed(manifest: dict) -> list[dict]:
    return [e for e in manifest["entries"] if e["status"] == "completed"]


def run_until_killed(campaign_path: Path, results_dir: Path) -> list[tuple[float, float, str]]:
    """Start the real command, SIGKILL it once KILL_AFTER experiments have completed.

    Returns:
        (experiments completed, planned, experiment id) from each scrape of its
        `--metrics-port` that showed an experiment.

    """
    port = free_port()
    command = [sys.executable, "-m", "llenergymeasure", "campaign", str(campaign_path)]
    proc = subprocess.Popen(
        [*command, "--metrics-port", str(port)],
        cwd=campaign_path.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    manifest_path = results_dir / "campaigns" / "grid" / "manifest.json"
    scraped = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        if manifest_path.is_file() and len(completed(read_manifest(results_dir))) >= KILL_AFTER:
            break
        metrics = scrape_metrics(port)
        if (
            metrics
            and metrics.get("llem_campaign_experiments_completed")
            and metrics.get("llem_experiment_phase")
        ):
            (done,) = metrics["llem_campaign_experiments_completed"]
            (planned,) = metrics["llem_campaign_experiments_planned"]
            (phase,) = metrics["llem_experiment_phase"]
            scraped.append((done.value, planned.value, phase.labels["experiment_id"]))
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return scraped


@pytest.fixture(scope="module")
def campaign_run(tmp_path_factory: pytest.TempPathFactory) -> CampaignRun:
    root = tmp_path_factory.mktemp("campaign")
    results_dir = root / "results"
    campaign_path = write_yaml(root / "grid.yaml", campaign_data(results_dir))
    scraped = run_until_killed(campaign_path, results_dir)
    killed = read_manifest(results_dir)
    raw_before = {p.name for p in (results_dir / "raw").iterdir()}
    resumed = run_llem("campaign", campaign_path, "--resume", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    final = read_manifest(results_dir)
    return CampaignRun(
        root, campaign_path, results_dir, killed, raw_before, resumed, final, scraped
    )


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert 20_000 < len(data) < 400_000
    return struct.unpack(">II", data[16:24])


def test_every_experiment_ran_in_the_interleaved_order(campaign_run: CampaignRun) -> None:
    entries = campaign_run.final["entries"]
    assert [(e["configuration"], e["cycle"]) for e in entries] == INTERLEAVED
    assert all(e["status"] == "completed" for e in entries)
    starts = [e["started_at"] for e in entries]
    assert starts == sorted(starts) and len(set(starts)) == 8
    for entry in entries:
        experiment_dir = campaign_run.results_dir / "raw" / entry["experiment_id"]
        manifest = orjson.loads((experiment_dir / "experiment.json").read_bytes())
        assert manifest["status"] == "completed"
        assert manifest["config_hash"] == entry["config_hash"]
        assert (
            manifest["config"]["name"] == entry["config_name"] == f"grid-c{entry['configuration']}"
        )
        generation = manifest["config"]["generation"]
        assert {
            "generation.batch_size": generation["batch_size"],
            "generation.max_new_tokens": generation["max_new_tokens"],
        } == entry["overrides"]
        assert (
            campaign_run.results_dir / "aggregated" / f"{entry['experiment_id']}.json"
        ).is_file()


def test_the_metrics_port_follows_the_campaign(campaign_run: CampaignRun) -> None:
    scraped = campaign_run.progress_scraped
    assert {planned for _, planned, _ in scraped} == {8}
    done = [d for d, _, _ in scraped]
    assert done == sorted(done) and done[0] < done[-1], "completed experiments counted up"
    ids = {e["experiment_id"] for e in campaign_run.killed["entries"] if e["experiment_id"]}
    shown = {experiment_id for _, _, experiment_id in scraped}
    assert len(shown) >= 2 and shown <= ids, "each experiment under its own id"


def test_resume_after_a_kill_runs_only_what_had_not_completed(campaign_run: CampaignRun) -> None:
    done_before = completed(campaign_run.killed)
    assert KILL_AFTER <= len(done_before) < 8
    # The entries completed before the kill kept their experiments.
    final = {e["index"]: e for e in campaign_run.final["entries"]}
    for entry in done_before:
        assert final[entry["index"]]["experiment_id"] == entry["experiment_id"]
        assert final[entry["index"]]["started_at"] == entry["started_at"]
    # The resume made exactly one new experiment per entry that had not completed.
    raw_after = {p.name for p in (campaign_run.results_dir / "raw").iterdir()}
    new = raw_after - campaign_run.raw_before_resume
    assert len(new) == 8 - len(done_before)
    assert new == {final[i]["experiment_id"] for i in final} - {
        e["experiment_id"] for e in done_before
    }
    # An experiment cut off by the kill is left as it was: running, no marker.
    for entry in campaign_run.killed["entries"]:
        if entry["status"] == "running":
            cut = campaign_run.results_dir / "raw" / entry["experiment_id"]
            if cut.is_dir():
                assert not list(cut.glob(".completed_*"))


def test_a_finished_campaign_is_not_started_twice(campaign_run: CampaignRun) -> None:
    again = run_llem("campaign", campaign_run.campaign_path, cwd=campaign_run.root)
    assert again.returncode == 2
    assert "campaign grid exists" in again.stderr and "--resume" in again.stderr
    resumed = run_llem("campaign", campaign_run.campaign_path, "--resume", cwd=campaign_run.root)
    assert resumed.returncode == 0 and "8 of 8 experiments completed" in resumed.stdout


def test_compare_campaign_prints_and_writes_one_row_per_configuration(
    campaign_run: CampaignRun,
) -> None:
    out = campaign_run.root / "compare.csv"
    proc = run_llem(
        "results", "compare", "--campaign", "grid",
        "--results-dir", campaign_run.results_dir, "--csv", "--out", out,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "J/token" in proc.stdout and "bootstrap interval" in proc.stdout
    assert "CPU estimate" in proc.stdout
    lines = out.read_text().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["configuration", "config_hash", "generation.batch_size",
                          "generation.max_new_tokens"]  # fmt: skip
    rows = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
    assert [r["configuration"] for r in rows] == ["grid-c1", "grid-c2", "grid-c3", "grid-c4"]
    assert all(r["cycles"] == "2" for r in rows)
    assert min(float(r["energy_ratio_to_best"]) for r in rows) == 1.0
    for r in rows:
        low, high = (
            float(r["energy_per_output_token_j_ci95_low"]),
            float(r["energy_per_output_token_j_ci95_high"]),
        )
        assert low <= float(r["energy_per_output_token_j_mean"]) <= high


def test_compare_by_experiment_ids_groups_cycles(campaign_run: CampaignRun) -> None:
    """Experiments named by id or by directory; --csv alone writes under exports/."""
    entries = campaign_run.final["entries"]
    ids = [e["experiment_id"] for e in entries if e["configuration"] in (1, 4)]
    named = [campaign_run.results_dir / "raw" / ids[0], *ids[1:]]
    results_dir = campaign_run.results_dir
    proc = run_llem("results", "compare", *named, "--results-dir", results_dir, "--csv")
    assert proc.returncode == 0, proc.stderr
    assert "grid-c1" in proc.stdout and "grid-c4" in proc.stdout
    assert "grid-c2" not in proc.stdout
    written = results_dir / "exports" / "comparison.csv"
    assert f"wrote {written} (2 configurations)" in proc.stdout
    rows = written.read_text().splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ["grid-c1", "grid-c4"]


def test_plot_campaign_writes_a_png(campaign_run: CampaignRun) -> None:
    proc = run_llem(
        "plot", "campaign", "grid", "--x", "generation.batch_size",
        "--results-dir", campaign_run.results_dir,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    path = (
        campaign_run.results_dir
        / "plots"
        / ("grid_energy_per_output_token_j_vs_generation.batch_size.png")
    )
    assert png_size(path) == (1280, 800)
    ambiguous = run_llem("plot", "campaign", "grid", "--results-dir", campaign_run.results_dir)
    assert ambiguous.returncode == 2 and "--x: name the parameter" in ambiguous.stderr


def test_plot_power_draws_gpu_samples_and_refuses_a_cpu_run(
    campaign_run: CampaignRun, tmp_path: Path
) -> None:
    experiment_id = campaign_run.final["entries"][0]["experiment_id"]
    refused = run_llem("plot", "power", experiment_id, "--results-dir", campaign_run.results_dir)
    assert refused.returncode == 2
    assert "no power readings" in refused.stderr and len(refused.stderr.splitlines()) == 1
    # The same experiment with a GPU time series in its sidecar (the result is unchanged,
    # so its completion marker still verifies).
    results = tmp_path / "results"
    shutil.copytree(
        campaign_run.results_dir / "raw" / experiment_id, results / "raw" / experiment_id
    )
    (results / "aggregated").mkdir()
    shutil.copy(
        campaign_run.results_dir / "aggregated" / f"{experiment_id}.json", results / "aggregated"
    )
    samples = [
        PowerThermalSample(t_s=0.1 * k, device_index=device, power_w=200.0 + device * 20 + k % 7)
        for k in range(40)
        for device in (0, 1)
    ]
    write_timeseries_parquet(
        samples, results / "raw" / experiment_id / "process_0_timeseries.parquet", start_s=0.0
    )
    drawn = run_llem("plot", "power", experiment_id, "--results-dir", results)
    assert drawn.returncode == 0, drawn.stderr
    assert png_size(results / "plots" / f"{experiment_id}_power.png") == (1280, 800)


def test_dry_run_prints_the_plan_and_creates_nothing(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "grid.yaml", campaign_data(tmp_path / "results"))
    proc = run_llem("campaign", path, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "8 experiments (4 configurations x 2 cycles), order interleaved" in proc.stdout
    assert proc.stdout.count("grid-c3") == 2
    assert not (tmp_path / "results").exists()


def test_invalid_configurations_are_all_refused_before_anything_runs(tmp_path: Path) -> None:
    data = campaign_data(tmp_path / "results")
    data["sweep"] = {"generation.batch_size": [0, 2], "model.dtype": ["float32", "fp8"]}
    proc = run_llem("campaign", write_yaml(tmp_path / "bad.yaml", data), cwd=tmp_path)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()
    assert "3 of 4 configurations are invalid" in line
    assert not (tmp_path / "results").exists()
