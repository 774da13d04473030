"""The transformers engine's deployment knobs: load arguments, compilation, what took effect.

`model.attn_implementation` and the dtype go to `from_pretrained`; `model.torch_compile`
wraps the forward in `torch.compile`, and `compile_forward_now` runs the generate calls
that compile it, before warmup, so that compilation stays out of the energy window.
`probe_cache` reads back which KV cache class generate used.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig

from llenergymeasure.config.deployment import TorchCompileConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.domain.deployment import DeploymentRecord
from llenergymeasure.log import logger


def pretrained_kwargs(config: ExperimentConfig, dtype: torch.dtype) -> dict[str, Any]:
    """Keyword arguments of `from_pretrained` for the model section of `config`."""
    cfg = config.model
    kwargs: dict[str, Any] = {
        "revision": cfg.revision,
        "dtype": dtype,
        "trust_remote_code": cfg.trust_remote_code,
    }
    if cfg.attn_implementation != "auto":
        kwargs["attn_implementation"] = cfg.attn_implementation
    return kwargs


def compile_forward(model: Any, settings: TorchCompileConfig) -> None:
    """Wrap `model.forward` in `torch.compile` (compilation happens on its first calls)."""
    mode = None if settings.mode == "default" else settings.mode
    model.forward = torch.compile(model.forward, backend=settings.backend, mode=mode)
    logger.info(f"torch.compile on the forward (backend {settings.backend}, {settings.mode})")


def compiled_graph_count() -> int:
    """Graphs torch's compiler has produced in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


@dataclass(frozen=True)
class Compilation:
    """What compiling the forward before warmup took: seconds, graphs and when it ended."""

    seconds: float
    graphs: int
    end_unix_s: float


def compile_forward_now(
    model: Any,
    batches: list[dict[str, torch.Tensor]],
    generation_config: GenerationConfig,
    synchronize: Callable[[], None],
) -> Compilation:
    """Run generate on each of `batches` so that the forward compiles.

    Two batches of different shapes compile the dynamic-shape graph that later shapes
    reuse, so that the window does not recompile for each new batch width.
    """
    graphs_before = compiled_graph_count()
    synchronize()
    start_s = time.monotonic()
    with torch.inference_mode():
        for inputs in batches:
            model.generate(**inputs, generation_config=generation_config)
    synchronize()
    seconds = time.monotonic() - start_s
    return Compilation(seconds, compiled_graph_count() - graphs_before, time.time())


def probe_cache(
    model: Any, inputs: dict[str, torch.Tensor], generation_config: GenerationConfig
) -> str:
    """The class name of the KV cache generate builds for `inputs` (one decoding step)."""
    probe = copy.deepcopy(generation_config)
    probe.max_new_tokens = 1
    probe.min_new_tokens = 0
    probe.return_dict_in_generate = True
    with torch.inference_mode():
        output = model.generate(**inputs, generation_config=probe)
    return type(output.past_key_values).__name__


def deployment_record(
    config: ExperimentConfig,
    model: Any,
    *,
    batch_count: int,
    cache_class: str | None,
    compiled: Compilation | None,
    window_graphs: int,
) -> DeploymentRecord:
    """The knobs as `config` asked and as `model` and generate ran them."""
    compile_cfg = config.model.torch_compile
    generation = config.generation
    weights = next(model.parameters(), None) if model is not None else None
    return DeploymentRecord(
        batching=generation.batching,
        max_batch_tokens=generation.max_batch_tokens,
        batch_count=batch_count,
        attn_implementation_requested=config.model.attn_implementation,
        attn_implementation_effective=getattr(model.config, "_attn_implementation", None),
        dtype_requested=config.model.dtype,
        dtype_effective=str(weights.dtype).removeprefix("torch.") if weights is not None else None,
        torch_compile_requested=(
            f"{compile_cfg.backend}:{compile_cfg.mode}" if compile_cfg.enabled else None
        ),
        torch_compile_effective=_compiled_effective(compile_cfg.enabled, compiled),
        compiled_graphs=compiled.graphs if compiled is not None else None,
        compile_s=compiled.seconds if compiled is not None else None,
        compile_end_unix_s=compiled.end_unix_s if compiled is not None else None,
        window_compiled_graphs=window_graphs if compile_cfg.enabled else None,
        cache_implementation_requested=generation.cache_implementation,
        cache_implementation_effective=cache_class,
    )


def _compiled_effective(requested: bool, compiled: Compilation | None) -> bool | None:
    """False when off; with compile on, whether graphs came of it (None: nothing ran)."""
    if not requested:
        return False
    return compiled.graphs > 0 if compiled is not None else None
