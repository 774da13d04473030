"""A campaign's manifest while it runs: entries, resume check, lock, time left.

`results/campaigns/<name>/manifest.json` is written before the first experiment and
rewritten atomically at every change of an entry. One campaign runs at a time: a lock
on `campaigns/<name>/.lock` (released by the system when the process dies, even by
SIGKILL) refuses a second process.
"""

from __future__ import annotations

import fcntl
import os
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from llenergymeasure.config.campaign import CampaignPlan, PlannedExperiment
from llenergymeasure.domain.campaign import CampaignEntry, CampaignManifest
from llenergymeasure.errors import ConfigError, ResultsError
from llenergymeasure.log import logger
from llenergymeasure.orchestration.manifest import config_hash
from llenergymeasure.results.campaigns import read_campaign_manifest
from llenergymeasure.results.layout import write_model


@dataclass(frozen=True)
class CampaignProgress:
    """Where the campaign stands: experiments completed, failed in this run, time left.

    `remaining_s` is None until an experiment has completed.
    """

    completed: int
    failed: int
    total: int
    remaining_s: float | None


def planned_entries(plan: CampaignPlan) -> list[CampaignEntry]:
    """The manifest entries of a plan, all pending."""
    return [_entry(p) for p in plan.experiments]


def gap_before(plan: CampaignPlan, previous: CampaignEntry, entry: CampaignEntry) -> float:
    """`cycle_gap_s` when the cycle changes between the two, `gap_s` otherwise."""
    campaign = plan.campaign
    return campaign.cycle_gap_s if entry.cycle != previous.cycle else campaign.gap_s


def estimate_remaining_s(
    plan: CampaignPlan, entries: list[CampaignEntry], next_index: int = 0
) -> float | None:
    """Mean duration of the completed experiments x those left, plus the gaps between them.

    Args:
        plan: the campaign (for its gaps).
        entries: the manifest's entries, in run order.
        next_index: the first entry not yet dealt with in this run: entries before it
            that did not complete (failed) are not run again until the next resume.

    Returns:
        Seconds; None while no experiment has completed to time one by.

    """
    durations = [
        (e.ended_at - e.started_at).total_seconds()
        for e in entries
        if e.status == "completed" and e.started_at is not None and e.ended_at is not None
    ]
    todo = [e for e in entries[next_index:] if e.status != "completed"]
    if not durations or not todo:
        return None if todo else 0.0
    gaps = sum(gap_before(plan, a, b) for a, b in zip(todo, todo[1:], strict=False))
    return statistics.fmean(durations) * len(todo) + gaps


@contextmanager
def campaign_lock(directory: Path) -> Iterator[None]:
    """Hold `directory/.lock` exclusively; refuse when another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ResultsError(
                f"campaign {directory.name} is running in another process ({directory}/.lock)"
            ) from None
        yield
    finally:
        os.close(fd)


class CampaignState:
    """The campaign manifest in memory, written atomically after every change."""

    def __init__(self, path: Path, plan: CampaignPlan) -> None:
        self.path = path
        self.plan = plan
        self.manifest: CampaignManifest

    def open(self, resume: bool) -> None:
        """Start a new manifest, or take up the existing one after checking it still fits."""
        if self.path.is_file():
            existing = read_campaign_manifest(
                self.plan.results_dir, self.plan.campaign.campaign_name
            )
            if not resume:
                done = sum(e.status == "completed" for e in existing.entries)
                raise ResultsError(
                    f"campaign {existing.campaign_name} exists ({self.path}: {done} of "
                    f"{len(existing.entries)} completed); continue it with --resume, or "
                    "choose another campaign_name"
                )
            check_resumable(self.plan, existing)
            self.manifest = existing
            self.save()
            return
        if resume:
            logger.info(f"no campaign to resume at {self.path}: starting it")
        now = datetime.now(timezone.utc)
        campaign = self.plan.campaign
        self.manifest = CampaignManifest(
            campaign_name=campaign.campaign_name,
            campaign_file=str(self.plan.source),
            order=campaign.order,
            seed=campaign.seed,
            cycles=campaign.cycles,
            gap_s=campaign.gap_s,
            cycle_gap_s=campaign.cycle_gap_s,
            created_at=now,
            updated_at=now,
            entries=planned_entries(self.plan),
        )
        self.save()

    def update(self, entry: CampaignEntry, **fields: object) -> CampaignEntry:
        """Replace an entry's fields and write the manifest."""
        updated = entry.model_copy(update=fields)
        self.manifest.entries[entry.index] = updated
        self.save()
        return updated

    def save(self) -> None:
        """Write the manifest atomically, stamped with the time of this change."""
        self.manifest.updated_at = datetime.now(timezone.utc)
        write_model(self.path, self.manifest)

    def progress(self, next_index: int, waiting_s: float = 0.0) -> CampaignProgress:
        """Counts and time left from entry `next_index` on, plus a gap about to be waited."""
        entries = self.manifest.entries
        remaining = estimate_remaining_s(self.plan, entries, next_index)
        return CampaignProgress(
            completed=sum(e.status == "completed" for e in entries),
            failed=sum(e.status == "failed" for e in entries[:next_index]),
            total=len(entries),
            remaining_s=None if remaining is None else remaining + waiting_s,
        )


def check_resumable(plan: CampaignPlan, manifest: CampaignManifest) -> None:
    """The campaign file must still give the manifest's entries, in the same order.

    Raises:
        ConfigError: naming the first entry that differs.

    """
    planned = planned_entries(plan)
    if len(planned) != len(manifest.entries):
        raise ConfigError(
            f"{plan.source}: gives {len(planned)} experiments, the manifest holds "
            f"{len(manifest.entries)}; restore the file, or choose another campaign_name"
        )
    for new, old in zip(planned, manifest.entries, strict=True):
        key_new = (new.configuration, new.cycle, new.config_hash)
        if key_new != (old.configuration, old.cycle, old.config_hash):
            raise ConfigError(
                f"{plan.source}: experiment {new.index + 1} is now {new.config_name} cycle "
                f"{new.cycle} ({new.config_hash[:12]}), the manifest has {old.config_name} "
                f"cycle {old.cycle} ({old.config_hash[:12]}); restore the file, or choose "
                "another campaign_name"
            )


def _entry(planned: PlannedExperiment) -> CampaignEntry:
    configuration = planned.configuration
    return CampaignEntry(
        index=planned.index,
        configuration=configuration.number,
        config_name=configuration.config.name,
        config_hash=config_hash(configuration.config),
        overrides=configuration.overrides,
        cycle=planned.cycle,
    )
