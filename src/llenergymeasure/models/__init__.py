"""Model resolution: builtin aliases, local directories and HuggingFace ids, offline first."""

from __future__ import annotations

from llenergymeasure.models.builtin import known_aliases, llem_cache_dir
from llenergymeasure.models.resolve import ModelSource, ResolvedModel, resolve_model

__all__ = ["ModelSource", "ResolvedModel", "known_aliases", "llem_cache_dir", "resolve_model"]
