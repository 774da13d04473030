"""The options of the engines that schedule requests themselves (`transformers_cb:`, `vllm:`).

`ExperimentConfig` refuses an engine's section under any other engine before anything runs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llenergymeasure.config.base import Section

VllmQuantization = Literal["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"]


class VllmConfig(Section):
    """Options of the vLLM engine (`engine: vllm`); the model's dtype is `model.dtype`."""

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


class ContinuousBatchingConfig(Section):
    """`engine: transformers-cb`: transformers' own continuous batching (a paged KV cache).

    Requests join and leave the running batch at every step, so none waits for the
    longest of a static batch. The cache sizes have no default on the CPU in transformers
    (it would size them from host memory); null here sizes them to the workload there.
    """

    max_requests_per_batch: int = Field(
        32, ge=1, le=4_096, description="Requests in one forward step at most."
    )
    max_batch_tokens: int | None = Field(
        None,
        ge=16,
        le=1_048_576,
        description="Tokens in one forward step at most. null: transformers' choice on a GPU; "
        "on the CPU the longest prompt, at least 256.",
    )
    kv_cache_tokens: int | None = Field(
        None,
        ge=16,
        le=100_000_000,
        description="Tokens the paged KV cache holds. null: sized from free memory on a GPU; "
        "on the CPU max_requests_per_batch x (longest prompt + max_new_tokens).",
    )
    page_size: int = Field(64, ge=4, le=4_096, description="Tokens per cache page.")
    scheduler: Literal["fifo", "prefill_first"] = Field(
        "fifo", description="fifo: in arrival order; prefill_first: new requests before decodes."
    )
    enable_prefix_caching: bool = Field(
        False,
        description="Share the KV cache pages of prompt prefixes seen before (transformers' "
        "block sharing, on by its default). Off by default so that every request's prefill is "
        "computed and measured, as on the other engines.",
    )


# The config section of each engine's own options; naming one for another engine is an error.
ENGINE_SECTIONS = {"transformers-cb": "transformers_cb", "vllm": "vllm"}
# What bounds the running batch of each engine that schedules requests itself.
ENGINE_BATCH_LIMITS = {
    "transformers-cb": "transformers_cb.max_requests_per_batch",
    "vllm": "vllm.max_num_seqs",
}
