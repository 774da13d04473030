"""Prompt sources: the bundled prompt sets and user JSONL/TXT files."""

from __future__ import annotations

from llenergymeasure.prompts.sources import (
    Prompt,
    list_builtin_sets,
    load_prompts,
    read_prompt_source,
)

__all__ = ["Prompt", "list_builtin_sets", "load_prompts", "read_prompt_source"]
