"""The default numbers the docs repeat are the code's: a changed default fails here.

The defaults live once, on the config's pydantic fields and in `llenergymeasure/defaults.py`
(`llem config show` prints them); where a doc states one for the reader, it is listed
below with the value it must have.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from llenergymeasure import defaults
from llenergymeasure.config.measurement import BaselineConfig, ThermalFloorConfig, TimeseriesConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.results.metrics import METRICS

REPO = Path(__file__).resolve().parents[2]


def default(model: type, name: str) -> object:
    return model.model_fields[name].default


# (file, pattern with one group per number, the numbers the code has)
STATED = [
    ("docs/methodology.md", r"null: (\d+) s on a GPU", [defaults.GPU_THERMAL_FLOOR_S]),
    (
        "docs/methodology.md",
        r"default socket of (\d+) W per (\d+) threads",
        [defaults.DEFAULT_SOCKET_TDP_W, defaults.DEFAULT_THREADS_PER_SOCKET],
    ),
    (
        "docs/methodology.md",
        r"`baseline.max_busy_share` \((\d+) %\)",
        [100 * default(BaselineConfig, "max_busy_share")],
    ),
    ("docs/campaigns.md", r"([\d,]+) times \(`--resamples`\)", [defaults.BOOTSTRAP_RESAMPLES]),
    ("docs/campaigns.md", r"\(`--seed`, default (\d+)\)", [defaults.BOOTSTRAP_SEED]),
    ("docs/formats.md", r"(\d+) Hz buckets by default", [default(TimeseriesConfig, "resample_hz")]),
    ("README.md", r"samples over time \((\d+) Hz\)", [default(TimeseriesConfig, "resample_hz")]),
    ("docs/python-api.md", r"the default (\d+) s one", [default(BaselineConfig, "duration_s")]),
    ("docs/python-api.md", r"`sample_interval_ms` \((\d+)\)", [defaults.SAMPLE_INTERVAL_MS]),
]
RESULTS_ROOT = [
    ("docs/formats.md", r"`--results-dir` \(default `([^`]+)`\)"),
    ("docs/formats.md", r"\(`results_dir`, default\s+`([^`]+)`\)"),
    ("README.md", r"\(default `([^`]+)`, the config's `results_dir`\)"),
    ("docs/python-api.md", r"`llem\.load_result\(id_or_path, results_dir=\"([^\"]+)\"\)`"),
    ("docs/python-api.md", r"`llem\.RankResults\(name, model_name, results_dir=\"([^\"]+)\"\)`"),
]


def number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.mark.parametrize(("doc", "pattern", "values"), STATED, ids=lambda v: str(v)[:40])
def test_a_default_the_docs_state_is_the_codes(doc: str, pattern: str, values: list) -> None:
    found = re.findall(pattern, (REPO / doc).read_text())
    assert found, f"{doc} no longer says {pattern!r}: update this list"
    for match in found:
        groups = match if isinstance(match, tuple) else (match,)
        assert [number(g) for g in groups] == [float(v) for v in values], (doc, match)


@pytest.mark.parametrize(("doc", "pattern"), RESULTS_ROOT)
def test_the_results_root_the_docs_state_is_the_configs(doc: str, pattern: str) -> None:
    found = re.findall(pattern, (REPO / doc).read_text())
    assert found, f"{doc} no longer says {pattern!r}: update this list"
    expected = default(ExperimentConfig, "results_dir")
    assert {Path(path) for path in found} == {expected} == {defaults.RESULTS_DIR}


def test_the_thermal_floor_block_of_methodology_shows_the_defaults() -> None:
    text = (REPO / "docs" / "methodology.md").read_text()
    (block,) = re.findall(r"```yaml\nmeasurement:\n  thermal_floor:\n(.*?)```", text, re.S)
    shown = yaml.safe_load("thermal_floor:\n" + block)["thermal_floor"]
    assert shown == ThermalFloorConfig().model_dump()


def test_the_metrics_the_docs_list_are_the_ones_compared_and_plotted() -> None:
    campaigns = (REPO / "docs" / "campaigns.md").read_text()
    table = campaigns.split("| column | metric | unit |")[1].split("\n\n")[0]
    in_table = [name for name in re.findall(r"`([a-z0-9_]+)`", table) if name in METRICS]
    assert in_table == list(METRICS), "docs/campaigns.md's metric table"
    formats = (REPO / "docs" / "formats.md").read_text()
    (listed,) = re.findall(r"for each of `([^`]+)`", formats)
    assert re.split(r",\s+", listed) == list(METRICS), "docs/formats.md's comparison CSV"
