"""The options of engine vllm (the `vllm:` section of an experiment config).

`ExperimentConfig` refuses the section under any other engine before anything runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VllmQuantization = Literal["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"]


class VllmConfig(BaseModel):
    """Options of the vLLM engine (`engine: vllm`); the model's dtype is `model.dtype`."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False
    )

    tensor_parallel_size: int = Field(
        1, ge=1, le=64, description="GPUs one engine shards the model over; its energy covers all."
    )
    max_num_seqs: int = Field(
        256, ge=1, le=65_536, description="Requests the scheduler runs at once (its batch)."
    )
    max_num_batched_tokens: int | None = Field(
        None, ge=1, le=10_000_000, description="Tokens per scheduler step; null: vLLM's choice."
    )
    gpu_memory_utilization: float = Field(
        0.9,
        gt=0,
        le=1,
        description="Share of the GPU's memory vLLM takes for weights and KV cache (on the "
        "CPU: of the NUMA node's memory); kv_cache_memory_mb overrides it for the cache.",
    )
    kv_cache_memory_mb: int | None = Field(
        None,
        ge=1,
        le=10_000_000,
        description="KV cache size; null: what gpu_memory_utilization leaves. On a shared "
        "CPU machine a fixed size avoids vLLM's refusal when the node's memory is in use.",
    )
    max_model_len: int | None = Field(
        None, ge=1, le=10_000_000, description="Context per request; null: the model's."
    )
    enforce_eager: bool = Field(False, description="No CUDA graphs or torch.compile.")
    enable_prefix_caching: bool = Field(
        False,
        description="Reuse the KV cache of shared prompt prefixes. Off by default so that "
        "every request's prefill is computed and measured, as on the other engines.",
    )
    quantization: VllmQuantization | None = Field(
        None, description="Weight quantization method; null: the checkpoint's own."
    )
