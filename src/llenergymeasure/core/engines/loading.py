"""How the transformers engine calls `from_pretrained`: placement and quantization.

One process's layout (`core/parallel.py`) decides where the weights go: a tensor-parallel
group shards every layer through transformers' own plan (`DistributedConfig(tp_size=T)`,
the model's `base_model_tp_plan`); a pipeline of several GPUs gets a balanced
`device_map` over exactly its GPUs; otherwise the model is loaded and moved to the
process's device. The model's stored size is measured after loading, quantized formats at
their real size (`stored_memory_mb`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from llenergymeasure.config.deployment import QuantizationConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core import device as devices
from llenergymeasure.core.engines.hf_deployment import pretrained_kwargs
from llenergymeasure.core.parallel import ProcessLayout
from llenergymeasure.domain.deployment import QuantizationRecord

MB = 2**20


@dataclass(frozen=True)
class LoadPlan:
    """The keyword arguments of `from_pretrained`, and whether to move the model afterwards."""

    kwargs: dict[str, Any]
    move_to_device: bool


def load_plan(config: ExperimentConfig, layout: ProcessLayout, dtype: torch.dtype) -> LoadPlan:
    """`from_pretrained` arguments for this process's share of the model."""
    cfg = config.model
    kwargs = pretrained_kwargs(config, dtype)
    quantization = quantization_config(cfg.quantization, dtype)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    parallel = config.parallel
    if parallel.tensor > 1:
        from transformers.distributed import DistributedConfig

        kwargs["distributed_config"] = DistributedConfig(tp_size=parallel.tensor)
        return LoadPlan(kwargs, move_to_device=False)
    if parallel.pipeline > 1:
        kwargs["device_map"] = "balanced"
        kwargs["max_memory"] = devices.free_memory_bytes(layout.cuda_ordinals)
        return LoadPlan(kwargs, move_to_device=False)
    if quantization is not None:
        # Quantized weights are made on their device while loading; they are not moved.
        kwargs["device_map"] = {"": layout.device}
        return LoadPlan(kwargs, move_to_device=False)
    return LoadPlan(kwargs, move_to_device=True)


def quantization_config(quantization: QuantizationConfig, dtype: torch.dtype) -> Any | None:
    """The transformers quantization config of `model.quantization`; None for `none`."""
    if quantization.method == "bitsandbytes":
        from transformers import BitsAndBytesConfig

        if quantization.bits == 8:
            return BitsAndBytesConfig(load_in_8bit=True)
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=compute_dtype(quantization, dtype),
        )
    if quantization.method == "torchao":
        quiet_torchao_import()
        from torchao.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        kind = Int8WeightOnlyConfig() if quantization.bits == 8 else Int4WeightOnlyConfig()
        return TorchAoConfig(quant_type=kind)
    return None


def quiet_torchao_import() -> None:
    """Keep torchao's import notices off the user's terminal.

    On import torchao logs a warning for each optional kernel library its build cannot
    load here (CUDA and MX kernels on a CPU machine), and torch one for each enum it
    registers; neither concerns the weight-only layers llem asks for, whose own failure
    would be an error.
    """
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)


def compute_dtype(quantization: QuantizationConfig, dtype: torch.dtype) -> torch.dtype:
    """The dtype quantized layers compute in: `compute_dtype`, or the model's under `auto`."""
    if quantization.compute_dtype == "auto":
        return dtype
    return devices.resolve_dtype(quantization.compute_dtype, "cpu")


def quantization_record(
    config: ExperimentConfig, model: torch.nn.Module, dtype: torch.dtype
) -> QuantizationRecord | None:
    """What quantization did to `model`; None when none was asked for."""
    quantization = config.model.quantization
    if quantization.method == "none" or quantization.bits is None:
        return None
    return QuantizationRecord(
        method=quantization.method,
        bits=quantization.bits,
        compute_dtype=str(compute_dtype(quantization, dtype)).removeprefix("torch."),
        quantized_weights=quantized_weight_count(model),
        unquantized_memory_mb=unquantized_memory_mb(model, dtype),
    )


def stored_memory_mb(model: torch.nn.Module) -> float:
    """MB the model's parameters and buffers take as stored on this process.

    A tensor subclass (torchao's quantized tensors, a tensor-parallel DTensor) is counted
    by the plain tensors it holds (packed integers and scales; this rank's shard), which
    `get_memory_footprint` would count at the outer dtype's size. A tensor shared by two
    modules (tied embeddings) counts once.
    """
    return sum(_stored_bytes(t) for t in _unique_tensors(model)) / MB


def quantized_weight_count(model: torch.nn.Module) -> int:
    """Parameters stored in an integer format (int8 or packed int4 data)."""
    return sum(
        1
        for p in _unique_tensors(model, buffers=False)
        if any(not t.is_floating_point() for t in _plain_tensors(p))
    )


def unquantized_memory_mb(model: torch.nn.Module, dtype: torch.dtype) -> float:
    """MB the same model takes unquantized in `dtype`: built on the meta device, never loaded."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(model.config, dtype=dtype)
    return sum(t.numel() * dtype.itemsize for t in _unique_tensors(plain)) / MB


def _unique_tensors(model: torch.nn.Module, buffers: bool = True) -> list[torch.Tensor]:
    tensors = list(model.parameters()) + (list(model.buffers()) if buffers else [])
    return list({id(t): t for t in tensors}.values())


def _plain_tensors(tensor: torch.Tensor) -> list[torch.Tensor]:
    """The plain tensors a tensor subclass stores (itself when it is plain).

    Wrapper subclasses (torchao, DTensor) name their inner tensors through the
    `__tensor_flatten__` protocol that torch.compile and serialisation use too.
    """
    if not hasattr(tensor, "__tensor_flatten__"):
        return [tensor]
    names, _ = tensor.__tensor_flatten__()
    inner = [getattr(tensor, name) for name in names]
    return [t for part in inner if isinstance(part, torch.Tensor) for t in _plain_tensors(part)]


def _stored_bytes(tensor: torch.Tensor) -> int:
    return sum(t.numel() * t.element_size() for t in _plain_tensors(tensor))
