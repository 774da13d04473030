"""How a device name says it is a GPU: the one place that reads `cuda` in a device string."""

from __future__ import annotations


def on_gpu(device: str | None) -> bool:
    """True for a CUDA device name (`cuda`, `cuda:1`); False for the CPU or no device."""
    return bool(device) and device.split(":", 1)[0] == "cuda"
