"""The device a process runs on: its CUDA ordinals, dtype, synchronisation and memory.

Whether a device is a GPU is `domain.device.on_gpu`, the one reading of a device name.
"""

from __future__ import annotations

import torch

from llenergymeasure.domain.device import on_gpu

__all__ = [
    "cuda_ordinals",
    "free_memory_bytes",
    "on_gpu",
    "peak_memory_mb",
    "reset_peak_memory",
    "resolve_dtype",
    "synchronize",
    "visible_gpu_count",
]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def cuda_ordinals(device: str) -> list[int]:
    """The CUDA device indices a process on `device` uses; empty off the GPU."""
    if not on_gpu(device):
        return []
    index = torch.device(device).index
    return [index if index is not None else torch.cuda.current_device()]


def visible_gpu_count() -> int:
    """GPUs this process may use (CUDA_VISIBLE_DEVICES applied); 0 without CUDA."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_dtype(name: str, device: str) -> torch.dtype:
    """`auto`: bfloat16 on a GPU that supports it, float32 otherwise."""
    if name != "auto":
        return _DTYPES[name]
    if on_gpu(device) and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def synchronize(device: str) -> None:
    """Wait for the work queued on `device`, so clocks and counters see it finished."""
    if on_gpu(device):
        torch.cuda.synchronize(device)


def reset_peak_memory(device: str) -> None:
    """Start counting `peak_memory_mb` afresh (a no-op off the GPU)."""
    if on_gpu(device):
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: str) -> float | None:
    """The most memory torch allocated on `device` since the last reset; None off the GPU."""
    if on_gpu(device):
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def free_memory_bytes(ordinals: list[int]) -> dict[int, int]:
    """Free bytes of each CUDA device in `ordinals`, as a `device_map`'s memory budget.

    A budget that names only these devices keeps a placement on them (no CPU offload).
    """
    return {ordinal: torch.cuda.mem_get_info(ordinal)[0] for ordinal in ordinals}
