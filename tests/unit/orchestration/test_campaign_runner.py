"""The campaign runner's checks that need no experiment to run.

Running, interruption and resume are tested on real experiments in
tests/integration/test_campaign_run.py.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from llenergymeasure.config.campaign import CampaignPlan, plan_campaign
from llenergymeasure.domain.campaign import CampaignEntry
from llenergymeasure.errors import ResultsError
from llenergymeasure.orchestration.campaign_state import campaign_lock, estimate_remaining_s

from llem_testing import tiny_config_dict, write_yaml

SWEEP = {"generation.batch_size": [1, 2], "generation.max_new_tokens": [4, 8]}


def make_plan(tmp_path: Path, **fields: Any) -> CampaignPlan:
    base = tiny_config_dict(tmp_path / "results")
    data = {"campaign_name": "grid", "base": base, "sweep": SWEEP, "cycles": 2, **fields}
    return plan_campaign(write_yaml(tmp_path / "campaign.yaml", data))


def manifest_of(plan: CampaignPlan) -> dict:
    path = plan.results_dir / "campaigns" / "grid" / "manifest.json"
    return orjson.loads(path.read_bytes())


def test_a_second_process_cannot_run_the_same_campaign(tmp_path: Path) -> None:
    with campaign_lock(tmp_path / "grid"):
        with pytest.raises(ResultsError, match="running in another process"):
            with campaign_lock(tmp_path / "grid"):
                pass
    with campaign_lock(tmp_path / "grid"):  # released when the holder ends
        pass


def test_time_left_is_mean_duration_times_experiments_left_plus_gaps(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, gap_s=5, cycle_gap_s=60)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def entry(
        index: int, cycle: int, status: str, duration_s: float | None = None
    ) -> CampaignEntry:
        done = duration_s is not None
        return CampaignEntry(
            index=index,
            configuration=index % 4 + 1,
            config_name="x",
            config_hash="h",
            cycle=cycle,
            status=status,  # type: ignore[arg-type]
            started_at=start if done else None,
            ended_at=start + timedelta(seconds=duration_s) if done else None,
        )

    entries = [entry(0, 1, "completed", 10), entry(1, 1, "completed", 20)]
    assert estimate_remaining_s(plan, entries) == 0.0
    todo = [entry(2, 1, "running"), entry(3, 1, "pending"), entry(4, 2, "pending")]
    assert estimate_remaining_s(plan, entries + todo) == 15 * 3 + 5 + 60
    assert estimate_remaining_s(plan, todo) is None
    # A failure earlier in this run is not run again before the next resume.
    failed = [entry(0, 1, "completed", 10), entry(1, 1, "failed"), entry(2, 1, "pending")]
    assert estimate_remaining_s(plan, failed, next_index=2) == 10
    assert estimate_remaining_s(plan, failed) == 10 * 2 + 5
