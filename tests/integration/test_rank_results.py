"""The docs' `torchrun` example as a real 2-process job: one experiment, llem run's checks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import llenergymeasure as llem
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.errors import IncompleteExperiment
from llenergymeasure.orchestration.launcher import free_port

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def job_script() -> str:
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), flags=re.M | re.S)
    (script,) = [b for b in blocks if "llem.RankResults(" in b]
    return script


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    root = tmp_path_factory.mktemp("torchrun")
    (root / "job.py").write_text(job_script())
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
    command += ["--master_port", str(free_port()), "job.py"]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
    return proc, root / "results"


def test_two_ranks_make_one_verified_experiment(job) -> None:
    proc, results = job
    assert proc.returncode == 0, proc.stderr[-3000:]
    (experiment_dir,) = (results / "raw").iterdir()
    result = llem.load_result(experiment_dir)
    assert f"{result.experiment_id} 2 32" in proc.stdout  # printed by rank 0 only, once
    assert proc.stdout.count(result.experiment_id) == 1
    assert result.aggregation.num_processes == result.aggregation.expected_num_processes == 2
    assert result.aggregation.temporal_overlap_verified
    assert result.aggregation.gpu_attribution_verified
    assert result.output_tokens == 32 and result.num_requests == 4
    (cpu,) = [c for c in result.energy_components if c.component == "cpu"]  # once per host
    assert cpu.energy_j is not None and cpu.energy_j > 0


def test_every_ranks_window_stays_open_until_all_ranks_are_done(job) -> None:
    _, results = job
    (experiment_dir,) = (results / "raw").iterdir()
    processes = llem.load_result(experiment_dir).processes
    assert len(processes) == 2
    raw = [
        RawProcessResult.model_validate_json((experiment_dir / f"process_{i}.json").read_bytes())
        for i in (0, 1)
    ]
    last_busy_end = max(r.inference_end_unix_s for r in raw)
    assert all(r.energy_window_end_unix_s >= last_busy_end for r in raw)


def test_a_missing_rank_is_refused_as_llem_run_refuses_it(job) -> None:
    _, results = job
    (experiment_dir,) = (results / "raw").iterdir()
    (experiment_dir / ".completed_1").unlink()
    with pytest.raises(IncompleteExperiment, match="incomplete"):
        llem.aggregate(experiment_dir)
