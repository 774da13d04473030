"""How a device name says it is a GPU, and which: the one place that reads `cuda` in one."""

from __future__ import annotations


def on_gpu(device: str | None) -> bool:
    """True for a CUDA device name (`cuda`, `cuda:1`); False for the CPU or no device."""
    return bool(device) and device.split(":", 1)[0] == "cuda"


def cuda_ordinal(device: int | str) -> int | None:
    """The ordinal of a CUDA device given as `N` or `"cuda:N"`; None for anything else."""
    digits = str(device).removeprefix("cuda:")
    return int(digits) if digits.isascii() and digits.isdigit() else None
