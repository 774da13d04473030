"""Where one process stands in the experiment's parallel layout, and which GPUs it holds.

Process `i` of `data x tensor` processes belongs to data group `i // tensor` as its rank
`i % tensor`: a group's ranks are consecutive, so on one host they are that host's
consecutive GPUs. With `pipeline: P`, the process of local index `l` holds the P GPUs
`l*P .. l*P + P-1` of its host, the first of which takes the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from llenergymeasure.config.deployment import ParallelConfig
from llenergymeasure.core.device import cuda_ordinals, on_gpu
from llenergymeasure.domain.deployment import ParallelPlacement


@dataclass(frozen=True)
class ProcessLayout:
    """One process's place: its record in the result, its device and its GPUs.

    Attributes:
        placement: what the result records (data group, tensor rank, sizes).
        device: where the inputs go (`cpu`, or the first GPU the process holds).
        cuda_ordinals: every CUDA device the process holds; empty on the CPU.

    """

    placement: ParallelPlacement
    device: str
    cuda_ordinals: list[int]


def process_layout(
    parallel: ParallelConfig, process_index: int, local_index: int, device: str
) -> ProcessLayout:
    """The layout of process `process_index` (local index `local_index`) on `device`.

    Args:
        parallel: the experiment's `parallel` section.
        process_index: the global rank.
        local_index: the rank among this host's processes.
        device: the device the process group gave this process (`cpu`, `cuda:<l>`).

    """
    placement = ParallelPlacement(
        data_groups=parallel.data,
        data_group=process_index // parallel.tensor,
        tensor_size=parallel.tensor,
        tensor_rank=process_index % parallel.tensor,
        pipeline_size=parallel.pipeline,
    )
    if not on_gpu(device):
        return ProcessLayout(placement, device, [])
    if parallel.pipeline == 1:
        return ProcessLayout(placement, device, cuda_ordinals(device))
    first = local_index * parallel.pipeline
    return ProcessLayout(placement, f"cuda:{first}", list(range(first, first + parallel.pipeline)))
