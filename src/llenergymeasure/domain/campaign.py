"""What a campaign writes to disk: `results/campaigns/<name>/manifest.json`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llenergymeasure.domain.experiment import SCHEMA_VERSION

CampaignEntryStatus = Literal["pending", "running", "completed", "failed", "interrupted"]


class CampaignEntry(BaseModel):
    """One experiment of the campaign, in run order."""

    model_config = ConfigDict(extra="ignore")

    index: int = Field(description="Position in the run order, from 0.")
    configuration: int = Field(description="Configuration number k (experiment name -c<k>).")
    config_name: str
    config_hash: str = Field(description="sha256 of the resolved config, as in experiment.json.")
    overrides: dict[str, Any] = Field(default_factory=dict)
    cycle: int = Field(description="Which run of its configuration, from 1.")
    status: CampaignEntryStatus = "pending"
    experiment_id: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None


class CampaignManifest(BaseModel):
    """The campaign's plan and the state of each experiment, rewritten at every change."""

    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    campaign_name: str
    campaign_file: str
    order: str
    seed: int
    cycles: int
    gap_s: float
    cycle_gap_s: float
    created_at: datetime
    updated_at: datetime
    entries: list[CampaignEntry]
