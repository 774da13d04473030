"""Batched HF `generate` with per-step timing and honest token counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from llenergymeasure.config.models import GenerationConfig as GenerationSettings
from llenergymeasure.core.engines.batching import Batching, plan_batches
from llenergymeasure.core.flops import BatchShape
from llenergymeasure.core.latency import request_latencies_ms
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.domain.metrics import LatencySamples
from llenergymeasure.prompts import Prompt


class StepTimer(StoppingCriteria):
    """Records when each decoding step ends. It never stops generation.

    `generate` calls stopping criteria once per step for the whole batch, which is
    what batched timing needs (HF streamers accept batch size 1 only).
    """

    def __init__(self, synchronize: Callable[[], None]) -> None:
        self.synchronize = synchronize
        self.times_s: list[float] = []

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        """Stamp the end of a step (after the device finished it)."""
        self.synchronize()
        self.times_s.append(time.monotonic())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


@dataclass
class EncodedBatch:
    """A left-padded batch ready for `generate`."""

    prompts: list[Prompt]
    inputs: dict[str, torch.Tensor]
    input_tokens: list[int]
    truncated: int = 0  # prompts of the batch that lost their start to fit the context


@dataclass
class BatchOutput:
    """What one `generate` call produced."""

    requests: list[RequestRecord]
    latency: LatencySamples
    shape: BatchShape


def prompt_texts(prompts: list[Prompt], tokenizer: Any, use_chat_template: bool) -> list[str]:
    """The strings fed to the tokenizer: chat-templated when asked and available."""
    if not (use_chat_template and getattr(tokenizer, "chat_template", None)):
        return [p.text for p in prompts]
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p.text}], tokenize=False, add_generation_prompt=True
        )
        for p in prompts
    ]


def encode_batches(
    prompts: list[Prompt],
    tokenizer: Any,
    *,
    batch_size: int,
    use_chat_template: bool,
    device: str,
    max_prompt_tokens: int | None = None,
    batching: Batching = "static",
    max_batch_tokens: int | None = None,
) -> list[EncodedBatch]:
    """Tokenise prompts into left-padded batches on `device`, grouped by `batching`.

    With `max_prompt_tokens`, a longer prompt keeps only its last `max_prompt_tokens`
    tokens (left truncation: the end, with the chat template's assistant turn, stays).
    The batches and their prompts are in run order (`batching.plan_batches`).
    """
    templated = use_chat_template and getattr(tokenizer, "chat_template", None) is not None
    tokenizer.truncation_side = "left"
    texts = prompt_texts(prompts, tokenizer, use_chat_template)
    full = [len(ids) for ids in tokenizer(texts, add_special_tokens=not templated)["input_ids"]]
    limit = max_prompt_tokens if max_prompt_tokens is not None else max(full, default=0)
    lengths = [min(n, limit) for n in full]
    batches = []
    for group in plan_batches(lengths, batching, batch_size, max_batch_tokens):
        enc = tokenizer(
            [texts[i] for i in group],
            return_tensors="pt",
            padding=True,
            add_special_tokens=not templated,
            truncation=max_prompt_tokens is not None,
            max_length=max_prompt_tokens,
        )
        inputs = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        counts = [int(n) for n in enc["attention_mask"].sum(dim=1).tolist()]
        truncated = sum(full[i] > limit for i in group)
        batches.append(EncodedBatch([prompts[i] for i in group], inputs, counts, truncated))
    return batches


def build_generation_config(
    settings: GenerationSettings, model: Any, tokenizer: Any, max_new_tokens: int | None = None
) -> GenerationConfig:
    """A fresh generation config: only what the experiment sets, plus EOS/pad ids."""
    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens or settings.max_new_tokens,
        "min_new_tokens": min(settings.min_new_tokens, max_new_tokens or settings.max_new_tokens),
        "do_sample": settings.do_sample,
        "eos_token_id": model.generation_config.eos_token_id or tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": model.generation_config.bos_token_id,
        # generate would compile a static cache's forward itself on a GPU, inside the
        # window; compilation is model.torch_compile's, done before warmup.
        "disable_compile": True,
    }
    if settings.cache_implementation == "static":
        kwargs["cache_implementation"] = "static"
    if settings.do_sample:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k)
    return GenerationConfig(**kwargs)


def eos_ids(generation_config: GenerationConfig) -> set[int]:
    """The token ids that end a request."""
    eos = generation_config.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(eos)}


def count_generated(row: list[int], stop_ids: set[int]) -> tuple[int, bool]:
    """Tokens a request really generated: up to and including its first EOS.

    Everything after the first EOS is padding added while other requests of the batch
    were still decoding.
    """
    for k, token in enumerate(row):
        if token in stop_ids:
            return k + 1, True
    return len(row), False


def generate_batch(
    model: Any,
    batch: EncodedBatch,
    generation_config: GenerationConfig,
    synchronize: Callable[[], None],
) -> BatchOutput:
    """Run one batch, timing each step on the monotonic clock."""
    timer = StepTimer(synchronize)
    synchronize()
    start_s = time.monotonic()
    with torch.inference_mode():
        output = model.generate(
            **batch.inputs,
            generation_config=generation_config,
            stopping_criteria=StoppingCriteriaList([timer]),
        )
    synchronize()
    return_s = time.monotonic()
    width = batch.inputs["input_ids"].shape[1]
    generated = output[:, width:].tolist()
    stop_ids = eos_ids(generation_config)
    counts = [count_generated(row, stop_ids) for row in generated]
    requests = [
        RequestRecord(
            prompt_id=prompt.id, input_tokens=n_in, output_tokens=n_out, stopped_by_eos=eos
        )
        for prompt, n_in, (n_out, eos) in zip(
            batch.prompts, batch.input_tokens, counts, strict=True
        )
    ]
    latency = request_latencies_ms(start_s, timer.times_s, [n for n, _ in counts], return_s)
    shape = BatchShape(
        rows=len(requests),
        padded_prompt_tokens=width,
        steps=output.shape[1] - width,
        padded=min(batch.input_tokens) < width,
    )
    return BatchOutput(requests, latency, shape)
