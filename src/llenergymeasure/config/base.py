"""The base of every config section: strict, closed, finite."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Strict types: a YAML boolean (`yes`, `on`) is not a number, `.nan` not a value.

    `Path` fields accept strings (they are written as strings in JSON and YAML).
    """

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False
    )
