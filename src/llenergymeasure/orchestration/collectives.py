"""Collective calls over the launch's process group, as tensors (never pickled).

gloo on the CPU, NCCL on a GPU: each tensor is on this process's device. Every call is
collective: each rank of the group must make it, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import torch
from accelerate import PartialState


def all_ranks_succeeded(state: PartialState, succeeded: bool) -> bool:
    """True on every rank when every rank succeeded; a collective call, so also a barrier."""
    if state.num_processes == 1:
        return succeeded
    failed = torch.tensor([0 if succeeded else 1], dtype=torch.int64, device=state.device)
    torch.distributed.all_reduce(failed, op=torch.distributed.ReduceOp.MAX)
    return int(failed.item()) == 0


def world_max(state: PartialState) -> Callable[[float], float]:
    """The maximum of a value over every rank: a tensor-parallel group spans the world.

    (transformers builds its tensor mesh over the whole launch, so tensor > 1 needs
    `parallel.data: 1`, `orchestration/deployment_checks.py`.)
    """

    def agree(value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float64, device=state.device)
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
        return float(tensor.item())

    return agree


def broadcast_bytes(payload: bytes | None, device: torch.device | str) -> bytes:
    """Rank 0's `payload` on every rank: two broadcasts, the length, then the bytes."""
    is_source = torch.distributed.get_rank() == 0
    data = (payload or b"") if is_source else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    torch.distributed.broadcast(size, src=0)
    buffer = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if is_source and data:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    torch.distributed.broadcast(buffer, src=0)
    return buffer.cpu().numpy().tobytes()


def broadcast_json(state: PartialState, data: dict[str, Any] | None) -> dict[str, Any]:
    """Rank 0's `data` on every rank, sent as JSON bytes."""
    if state.num_processes == 1:
        assert data is not None
        return data
    payload = orjson.dumps(data) if state.is_main_process else None
    return orjson.loads(broadcast_bytes(payload, state.device))
