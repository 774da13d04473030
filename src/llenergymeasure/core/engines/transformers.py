"""`engine: transformers`: batches through Hugging Face `generate`.

Prompts are tokenised into left-padded batches grouped by `generation.batching`;
each batch is one `generate` call timed per step (`generation.generate_batch`), so the
records say when each request produced its first and last token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core import device as devices
from llenergymeasure.core.engines.base import EngineOutput, LoadedModel, RequestsDoneFn, Workload
from llenergymeasure.core.engines.generation import (
    BatchOutput,
    build_generation_config,
    encode_batches,
    generate_batch,
)
from llenergymeasure.core.engines.hf_deployment import (
    Compilation,
    compile_forward,
    compile_forward_now,
    compiled_graph_count,
    deployment_record,
    probe_cache,
)
from llenergymeasure.core.engines.loading import load_plan, quantization_record, stored_memory_mb
from llenergymeasure.core.flops import model_geometry
from llenergymeasure.core.parallel import ProcessLayout, process_layout
from llenergymeasure.core.warmup import create_warmup_inference_fn
from llenergymeasure.domain.metrics import LatencySamples
from llenergymeasure.log import logger
from llenergymeasure.models import resolve_model
from llenergymeasure.prompts import Prompt


class TransformersEngine:
    """One process's model on its device (or its share of the model), run in static batches."""

    name = "transformers"

    def __init__(
        self, config: ExperimentConfig, device: str, layout: ProcessLayout | None = None
    ) -> None:
        self.config = config
        self.layout = layout or process_layout(config.parallel, 0, 0, device)
        self.device = self.layout.device
        self.cuda_ordinals = self.layout.cuda_ordinals
        self.dtype = devices.resolve_dtype(config.model.dtype, self.device)
        self.model: Any = None
        self.tokenizer: Any = None
        self.compiled: Compilation | None = None
        self.cache_class: str | None = None

    def load(self) -> LoadedModel:
        """Resolve and load the model and its tokenizer (left padding for batching)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cfg = self.config.model
        resolved = resolve_model(cfg.name, revision=cfg.revision)
        if cfg.trust_remote_code:
            logger.warning(f"trust_remote_code is on: code shipped with {cfg.name} will run")
        self.tokenizer = AutoTokenizer.from_pretrained(
            resolved.path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        plan = load_plan(self.config, self.layout, self.dtype)
        self.model = AutoModelForCausalLM.from_pretrained(resolved.path, **plan.kwargs)
        if plan.move_to_device:
            self.model = self.model.to(self.device)
        self.model.eval()
        if cfg.torch_compile.enabled:
            compile_forward(self.model, cfg.torch_compile)
        memory_mb = stored_memory_mb(self.model)
        logger.info(
            f"loaded {cfg.name} ({resolved.source}) as {self.dtype} on {self.device}: "
            f"{memory_mb:.1f} MB stored"
        )
        context = getattr(self.model.config, "max_position_embeddings", None)
        return LoadedModel(
            source=resolved.source,
            dtype=str(self.dtype).removeprefix("torch."),
            geometry=model_geometry(self.model),
            context_tokens=context if isinstance(context, int) and context > 0 else None,
            memory_mb=memory_mb,
            quantization=quantization_record(self.config, self.model, self.dtype),
        )

    def prepare(self, prompts: list[Prompt], max_prompt_tokens: int | None) -> Workload:
        """Left-padded batches as `generation.batching` groups the prompts (`batching.py`)."""
        generation = self.config.generation
        batches = encode_batches(
            prompts,
            self.tokenizer,
            batch_size=generation.batch_size,
            use_chat_template=self.config.prompts.chat_template,
            device=self.device,
            max_prompt_tokens=max_prompt_tokens,
            batching=generation.batching,
            max_batch_tokens=generation.max_batch_tokens,
        )
        return Workload(prompts, batches, truncated=sum(b.truncated for b in batches))

    def warmup_step(self, workload: Workload, max_new_tokens: int) -> Callable[[], float] | None:
        """`generate` on the first batch with the warmup's token budget.

        Before it, with `model.torch_compile`, the forward is compiled on the first and
        last batches (`compile_s`), and one decoding step reads back the KV cache class.
        """
        if not workload.items:
            return None
        gen_config = build_generation_config(
            self.config.generation, self.model, self.tokenizer, max_new_tokens
        )
        first, last = workload.items[0].inputs, workload.items[-1].inputs
        if self.config.model.torch_compile.enabled:
            same_shape = first["input_ids"].shape == last["input_ids"].shape
            distinct = [first] if same_shape else [first, last]
            self.compiled = compile_forward_now(self.model, distinct, gen_config, self.synchronize)
            logger.info(
                f"compiled {self.compiled.graphs} graph(s) in {self.compiled.seconds:.1f} s"
            )
        self.cache_class = probe_cache(self.model, first, gen_config)
        run_once = create_warmup_inference_fn(
            self.model,
            workload.items[0].inputs,
            {"generation_config": gen_config},
            self.synchronize,
        )

        def timed() -> float:
            with torch.inference_mode():
                return run_once()

        return timed

    def run(self, workload: Workload, requests_done: RequestsDoneFn) -> EngineOutput:
        """Every batch in order, each one `generate` call timed per step."""
        gen_config = build_generation_config(self.config.generation, self.model, self.tokenizer)
        devices.reset_peak_memory(self.device)
        graphs_before = compiled_graph_count()
        outputs: list[BatchOutput] = []
        for batch in workload.items:
            outputs.append(generate_batch(self.model, batch, gen_config, self.synchronize))
            finished = [r for o in outputs for r in o.requests]
            requests_done(len(finished), sum(r.output_tokens for r in finished))
        return EngineOutput(
            requests=[r for o in outputs for r in o.requests],
            latency=LatencySamples.concat([o.latency for o in outputs]),
            shapes=[o.shape for o in outputs],
            batch_sizes=[len(o.requests) for o in outputs],
            peak_memory_mb=devices.peak_memory_mb(self.device),
            deployment=deployment_record(
                self.config,
                self.model,
                batch_count=len(outputs),
                cache_class=self.cache_class,
                compiled=self.compiled,
                window_graphs=compiled_graph_count() - graphs_before,
            ),
        )

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op on the CPU)."""
        devices.synchronize(self.device)

    def helper_pids(self) -> list[int]:
        """None: the model runs in this process."""
        return []

    def close(self) -> None:
        """Drop the model and tokenizer."""
        self.model = None
        self.tokenizer = None
