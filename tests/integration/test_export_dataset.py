"""`llem export RESULTS_DIR --parquet` on real runs, and every snippet of docs/analysis.md.

The results folder holds the session's real two-process experiment and a real
one-process run with another batch size.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.domain.experiment import AggregatedResult, RawProcessResult
from llenergymeasure.orchestration.launcher import run_experiment
from llenergymeasure.results.layout import (
    process_result_path,
    read_model,
    write_marker,
    write_model,
)

from llem_testing import MultiProcessRun, run_llem, tiny_config_dict

ANALYSIS_DOC = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, two_process_run: MultiProcessRun) -> Path:
    """`<tmp>/results` with both experiments, aggregated."""
    root = tmp_path_factory.mktemp("dataset") / "results"
    shutil.copytree(two_process_run.results_dir, root)
    run_experiment(validate_config(tiny_config_dict(root, generation={"batch_size": 2})))
    return root


def export_ok(*args: str | Path) -> str:
    done = run_llem("export", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def aggregates(root: Path) -> list[AggregatedResult]:
    return [read_model(p, AggregatedResult) for p in sorted((root / "aggregated").glob("*.json"))]


def processes(root: Path) -> list[RawProcessResult]:
    return [read_model(p, RawProcessResult) for p in sorted(root.glob("raw/*/process_*.json"))]


def test_tables_hold_every_experiment_request_and_sample(results: Path) -> None:
    stdout = export_ok(results, "--parquet")
    out = results / "exports" / "dataset"
    assert f"wrote {out / 'experiments.parquet'} (2 experiments)" in stdout
    assert "skipped" not in stdout
    experiments = pq.read_table(out / "experiments.parquet").to_pandas()
    requests = pq.read_table(out / "requests.parquet").to_pandas()
    timeseries = pq.read_table(out / "timeseries.parquet")
    aggs = aggregates(results)
    assert sorted(experiments["experiment_id"]) == sorted(a.experiment_id for a in aggs)
    assert len(requests) == sum(a.num_requests for a in aggs) == 12 + 12
    sidecars = sorted(results.glob("raw/*/process_*_timeseries.parquet"))
    assert len(sidecars) == 3
    assert timeseries.num_rows == sum(pq.read_metadata(p).num_rows for p in sidecars)
    assert timeseries.column_names[:2] == ["experiment_id", "process_index"]
    for column in ("energy_adjusted_j", "wall_window_s", "energy_node_j", "latency_ttft_p95_ms"):
        assert column in experiments.columns
    by_id = experiments.set_index("experiment_id")
    for agg in aggs:
        row = by_id.loc[agg.experiment_id]
        assert row["energy_adjusted_j"] == agg.energy_breakdown.adjusted_j
        assert row["output_tokens"] == agg.output_tokens
    assert sorted(by_id["config.processes"]) == [1, 2]
    assert sorted(by_id["config.generation.batch_size"]) == [2, 4]
    assert set(by_id["config.model.name"]) == {"builtin:tiny-llama"}
    assert by_id["config_hash"].str.fullmatch("[0-9a-f]{64}").all()
    assert requests["energy_j"].isna().all()


def test_request_latencies_are_the_process_samples_in_order(results: Path) -> None:
    export_ok(results, "--parquet", "--out", results.parent / "latencies")
    requests = pq.read_table(results.parent / "latencies" / "requests.parquet").to_pandas()
    for result in processes(results):
        rows = requests[
            (requests["experiment_id"] == result.experiment_id)
            & (requests["process_index"] == result.process_index)
        ]
        assert list(rows["prompt_id"]) == [r.prompt_id for r in result.requests]
        assert list(rows["ttft_ms"]) == result.latency_samples.ttft_ms
        assert list(rows["e2e_ms"]) == result.latency_samples.e2e_ms
        first_gaps = result.latency_samples.itl_ms[: result.requests[0].output_tokens - 1]
        assert rows["itl_mean_ms"].iloc[0] == pytest.approx(sum(first_gaps) / len(first_gaps))


def test_unmatched_latency_samples_leave_that_process_null(results: Path, tmp_path: Path) -> None:
    root = tmp_path / "results"
    shutil.copytree(results, root)
    experiment_dir = next(p.parent for p in root.glob("raw/*/process_1.json"))
    result = read_model(process_result_path(experiment_dir, 1), RawProcessResult)
    result.latency_samples.ttft_ms.pop()
    write_marker(experiment_dir, 1, write_model(process_result_path(experiment_dir, 1), result))
    stdout = export_ok(root, "--parquet")
    assert (
        f"skipped {experiment_dir.name} process 1: latency samples do not match its requests"
        in " ".join(stdout.split())
    )
    requests = pq.read_table(root / "exports" / "dataset" / "requests.parquet").to_pandas()
    mine = requests[requests["experiment_id"] == experiment_dir.name]
    assert mine[mine["process_index"] == 1]["ttft_ms"].isna().all()
    assert mine[mine["process_index"] == 0]["ttft_ms"].notna().all()


def test_unreadable_aggregate_is_skipped_with_one_line(results: Path, tmp_path: Path) -> None:
    root = tmp_path / "results"
    shutil.copytree(results, root)
    broken = root / "aggregated" / "broken.json"
    broken.write_text('{"experiment_id": ')
    stdout = export_ok(root, "--parquet")
    skipped = [line for line in stdout.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and "broken.json" in skipped[0]
    experiments = pq.read_table(root / "exports" / "dataset" / "experiments.parquet")
    assert experiments.num_rows == 2


def test_existing_dataset_is_replaced_as_the_csv_is(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "experiments.parquet").write_text("an older export")
    export_ok(results, "--parquet", "--out", out)
    assert pq.read_table(out / "experiments.parquet").num_rows == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "experiments.parquet",
        "requests.parquet",
        "timeseries.parquet",
    ]


def test_parquet_needs_a_results_folder(results: Path) -> None:
    experiment_dir = next((results / "raw").iterdir())
    done = run_llem("export", experiment_dir, "--parquet")
    assert done.returncode == 2
    assert "--parquet needs a results folder" in done.stderr


def test_every_analysis_snippet_runs(
    results: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    export_ok(results, "--parquet")
    blocks = PYTHON_BLOCK.findall(ANALYSIS_DOC.read_text())
    assert len(blocks) == 4
    monkeypatch.chdir(results.parent)
    for block in blocks:
        exec(compile(block, str(ANALYSIS_DOC), "exec"), {})
    printed = capsys.readouterr().out
    for experiment in aggregates(results):
        assert experiment.experiment_id in printed
