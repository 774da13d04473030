"""Secrets never reach results or logs: Hugging Face tokens are masked in what llem writes.

llem itself never asks for a token: `huggingface_hub` reads it from the environment
(`HF_TOKEN`) or its own login file. A token can still reach llem's text by accident (a
command line, an error message of a library), so the recorded launch command, every log
line and every error line pass through `redact`.
"""

from __future__ import annotations

import os
import re

TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{20,}")
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACEHUB_API_TOKEN")
MASK = "hf_***"
# Shorter values are not tokens, and masking them would garble ordinary text.
MIN_SECRET_CHARS = 8


def redact(text: str) -> str:
    """`text` with every token-shaped string and the value of every token variable masked."""
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name, "").strip()
        if len(value) >= MIN_SECRET_CHARS:
            text = text.replace(value, MASK)
    return TOKEN_PATTERN.sub(MASK, text)


def redact_all(items: list[str]) -> list[str]:
    """`redact` applied to each item of a command line."""
    return [redact(item) for item in items]
