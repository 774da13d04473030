"""Experiment ids: `<config-name>_<UTC yyyymmddThhmmss>_<4 hex>`."""

from __future__ import annotations

import secrets
from datetime import datetime, timezone

from llenergymeasure.results.layout import validate_experiment_id


def new_experiment_id(config_name: str, now: datetime | None = None) -> str:
    """A fresh id; the random suffix keeps runs started in the same second apart."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S")
    return validate_experiment_id(f"{config_name}_{stamp}_{secrets.token_hex(2)}")
