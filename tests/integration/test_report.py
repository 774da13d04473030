"""`llem report` on real tiny runs, each page loaded in a real headless Chromium.

The screenshots are kept as test artefacts under the repository's git-ignored
`results/test-artefacts/` (their paths are printed; `pytest -s` shows them).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from headless_chromium import LoadedPage, find_or_install_chromium, load_page
from llenergymeasure.core.timeseries import write_timeseries_parquet
from llenergymeasure.domain.samples import PowerThermalSample

from llem_testing import REPO, run_llem, tiny_config_dict, write_yaml

ARTEFACTS = REPO / "results" / "test-artefacts"
INJECTED = "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="session")
def chromium() -> str:
    path = find_or_install_chromium()
    if path is None:
        pytest.skip(
            "chromium is missing and cannot be installed here (needs root, apt-get and "
            "Debian's package registry): apt-get install chromium"
        )
    return path


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root holding one real tiny experiment, run by `llem run`."""
    root = tmp_path_factory.mktemp("report")
    config = write_yaml(root / "tiny.yaml", tiny_config_dict(root / "results"))
    proc = run_llem("run", config, cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "results"


def experiment_id(results: Path) -> str:
    (only,) = (results / "raw").iterdir()
    return only.name


def copy_results(results: Path, target: Path) -> Path:
    shutil.copytree(results, target, ignore=shutil.ignore_patterns("report.html"))
    return target


def keep_screenshot(page: LoadedPage, name: str) -> Path:
    """Save the screenshot as an artefact, after checking it shows more than a blank page."""
    import matplotlib.image

    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTEFACTS / name
    path.write_bytes(page.screenshot_png)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 900 and pixels.shape[1] == 1280
    assert float(np.std(pixels[..., :3])) > 0.05, "the screenshot is blank"
    print(f"screenshot: {path}")
    return path


def assert_loads_cleanly(page: LoadedPage, report: Path, figures: int) -> None:
    """No console error, nothing fetched but the file and its inline images, figures drawn."""
    assert page.errors == []
    assert {url for url in page.requests if not url.startswith("data:image/png;base64,")} == {
        report.resolve().as_uri()
    }
    assert page.probe["scripts"] == 0
    images = page.probe["images"]
    assert len(images) == figures, images
    for image in images:
        assert image["complete"] and image["src"].startswith("data:image/png")
        assert (image["natural_width"], image["natural_height"]) == (960, 600)
        assert image["width"] > 400 and image["height"] > 250


def test_experiment_report_opens_offline_with_its_figures_and_warnings(
    chromium: str, results_dir: Path
) -> None:
    exp_id = experiment_id(results_dir)
    proc = run_llem("report", results_dir / "raw" / exp_id)
    assert proc.returncode == 0, proc.stderr
    report = results_dir / "raw" / exp_id / "report.html"
    assert proc.stdout.split() == ["wrote", str(report)]
    page = load_page(chromium, report)
    assert_loads_cleanly(page, report, figures=1)
    keep_screenshot(page, "report_experiment.png")
    text = page.probe["text"]
    aggregated = orjson.loads((results_dir / "aggregated" / f"{exp_id}.json").read_bytes())
    assert page.probe["title"] == f"llem report: {exp_id}"
    for expected in (
        "builtin:tiny-llama",
        "engine\ttransformers (PyTorch ",
        "builtin:mixed, 12 requests",
        "8 (greedy decoding)",
        "load\toffline",
    ):
        assert expected in text
    assert f"{aggregated['energy_breakdown']['raw_j']:,.2f} J" in text
    assert "estimate, boundary cpu_dram" in text
    assert "no power readings over time" in text  # a CPU run: said, not drawn
    for warning in aggregated["warnings"]:
        assert warning["code"] in text and warning["remediation"] in text
    assert "llem run tiny.yaml" in text and aggregated["experiment_id"] in text
    manifest = orjson.loads((results_dir / "raw" / exp_id / "experiment.json").read_bytes())
    assert manifest["config_hash"] in text and "max_new_tokens: 8" in text


def test_gpu_power_over_time_is_drawn(chromium: str, results_dir: Path, tmp_path: Path) -> None:
    results = copy_results(results_dir, tmp_path / "results")
    exp_id = experiment_id(results)
    # The same experiment with GPU rows in its sidecar (the result is unchanged, so its
    # completion marker still verifies).
    samples = [
        PowerThermalSample(t_s=0.1 * k, device_index=0, power_w=200.0 + k % 7) for k in range(40)
    ]
    sidecar = results / "raw" / exp_id / "process_0_timeseries.parquet"
    write_timeseries_parquet(samples, sidecar, start_s=0.0, resample_hz=0)
    report = tmp_path / "power.html"
    proc = run_llem("report", exp_id, "--results-dir", results, "--out", report)
    assert proc.returncode == 0, proc.stderr
    page = load_page(chromium, report)
    assert_loads_cleanly(page, report, figures=2)
    assert page.probe["images"][0]["alt"] == "Power over time"
    assert "Not drawn" not in page.probe["text"]


def test_markup_in_a_result_is_shown_as_text(
    chromium: str, results_dir: Path, tmp_path: Path
) -> None:
    results = copy_results(results_dir, tmp_path / "results")
    exp_id = experiment_id(results)
    manifest_file = results / "raw" / exp_id / "experiment.json"
    manifest = orjson.loads(manifest_file.read_bytes())
    manifest["config"]["name"] = INJECTED
    manifest_file.write_bytes(orjson.dumps(manifest))
    aggregated_file = results / "aggregated" / f"{exp_id}.json"
    aggregated = orjson.loads(aggregated_file.read_bytes())
    aggregated["model_name"] = INJECTED
    aggregated["warnings"][0]["message"] = INJECTED
    aggregated_file.write_bytes(orjson.dumps(aggregated))
    report = tmp_path / "injected.html"
    proc = run_llem("report", aggregated_file, "--out", report)  # the aggregate's path works too
    assert proc.returncode == 0, proc.stderr
    assert "<script>" not in report.read_text() and "&lt;script&gt;" in report.read_text()
    page = load_page(chromium, report)
    assert page.probe["title"] == f"llem report: {exp_id}"
    assert page.probe["scripts"] == 0
    assert [i["alt"] for i in page.probe["images"]] == ["Energy by boundary"]
    assert page.probe["text"].count(INJECTED) >= 3  # shown, as text, where it was put


def test_an_existing_out_file_is_kept_without_force(results_dir: Path, tmp_path: Path) -> None:
    exp_id = experiment_id(results_dir)
    out = tmp_path / "mine.html"
    out.write_text("keep me")
    refused = run_llem("report", exp_id, "--results-dir", results_dir, "--out", out)
    assert refused.returncode == 2
    assert refused.stderr.strip() == f"error: --out {out} exists; pass --force to overwrite it"
    assert out.read_text() == "keep me"
    forced = run_llem("report", exp_id, "--results-dir", results_dir, "--out", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope_1"], "error: no experiment nope_1 under"),
        ([], "error: name one experiment (ID or results/raw/<id>) or --campaign NAME"),
        (["x", "--campaign", "c"], "error: name one experiment"),
        (["--campaign", "missing"], "error: no campaign missing under"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = run_llem("report", *args, "--results-dir", tmp_path / "results", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and len(proc.stderr.splitlines()) == 1
    assert not (tmp_path / "results").exists()


@pytest.fixture(scope="module")
def campaign_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real campaign: batch size 1 and 4, two cycles each, on the tiny model."""
    root = tmp_path_factory.mktemp("report-campaign")
    base = tiny_config_dict(
        root / "results",
        prompts={"num_prompts": 4},
        measurement={
            "warmup": {"min_prompts": 1, "max_prompts": 2, "window_size": 2},
            "baseline": {"duration_s": 0.1, "cache_ttl_s": 0},
        },
    )
    campaign = {
        "campaign_name": "sweep",
        "base": base,
        "sweep": {"generation.batch_size": [1, 4]},
        "cycles": 2,
        "gap_s": 0,
    }
    proc = run_llem("campaign", write_yaml(root / "sweep.yaml", campaign), cwd=root)
    assert proc.returncode == 0, proc.stderr
    return root / "results"


def test_campaign_report_compares_the_configurations(chromium: str, campaign_results: Path) -> None:
    proc = run_llem("report", "--campaign", "sweep", "--results-dir", campaign_results)
    assert proc.returncode == 0, proc.stderr
    report = campaign_results / "campaigns" / "sweep" / "report.html"
    assert proc.stdout.split() == ["wrote", str(report)]
    page = load_page(chromium, report)
    assert_loads_cleanly(page, report, figures=2)  # energy/token and throughput vs batch size
    keep_screenshot(page, "report_campaign.png")
    text = page.probe["text"]
    assert "swept: generation.batch_size\t1, 4" in text and "engine\ttransformers" in text
    for name in ("sweep-c1", "sweep-c2"):
        assert text.count(name) >= 2  # its row in the table and its resolved config
    assert "llem campaign" in text and "sweep.yaml" in text
    assert text.count("completed") >= 4


def test_an_experiment_of_a_campaign_shows_the_interval_over_its_cycles(
    campaign_results: Path, tmp_path: Path
) -> None:
    manifest = orjson.loads((campaign_results / "campaigns/sweep/manifest.json").read_bytes())
    first = manifest["entries"][0]["experiment_id"]
    report = tmp_path / "cycle.html"
    proc = run_llem("report", first, "--results-dir", campaign_results, "--out", report)
    assert proc.returncode == 0, proc.stderr
    document = report.read_text()
    assert "mean over the 2 completed cycles of this configuration" in document
    assert "over cycles, 95 % interval" in document and ", n=2</td>" in document
