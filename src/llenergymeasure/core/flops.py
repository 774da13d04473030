"""Inference FLOPs: what the requests needed (useful) and what the device computed (executed).

Both are analytic (method `analytic_2n_attn`, formulas in docs/methodology.md): 2 FLOPs
per body weight per token fed through the model, 2 per output-head weight per position
whose logits are computed, and 4 x n_layers x d_attn per key that a query attends to
(QK^T and AV). Useful work counts each request's own tokens with causal attention;
executed work counts every row of a batch over its padded prompt and every decode step
up to the batch's longest request, with the attention as the kernel computes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.domain.metrics import FlopsResult

METHOD = "analytic_2n_attn"


@dataclass(frozen=True)
class BatchShape:
    """What one `generate` call ran, whatever its requests needed.

    Attributes:
        rows: requests in the batch; every row runs every step.
        padded_prompt_tokens: the prompt width after left padding.
        steps: forward passes (prefill plus decodes): the longest request's output tokens.
        padded: whether any prompt is shorter than the width (a padding mask is passed).

    """

    rows: int
    padded_prompt_tokens: int
    steps: int
    padded: bool


@dataclass(frozen=True)
class ModelGeometry:
    """The parts of a decoder that set its FLOPs per token.

    Attributes:
        body_params: weights multiplied once per token fed: all but the embedding
            tables and the output head.
        head_params: weights of the output head (vocabulary x hidden, plus any bias).
        n_layers: decoder layers.
        attn_width: query heads x head dimension (GQA shares K/V, not the scores).
        attn_implementation: `eager`, `sdpa`, `flash_attention_2`, ...
        logits_at_every_prompt_position: the model's forward has no `logits_to_keep`,
            so prefill runs the head over the whole prompt.

    """

    body_params: int
    head_params: int
    n_layers: int
    attn_width: int
    attn_implementation: str
    logits_at_every_prompt_position: bool


def model_geometry(model: Any) -> ModelGeometry | None:
    """Read the geometry of a Hugging Face causal LM; None where the config lacks it."""
    config = model.config.get_text_config()
    n_layers = getattr(config, "num_hidden_layers", None)
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    head_dim = getattr(config, "head_dim", None) or (hidden // heads if hidden and heads else None)
    head = model.get_output_embeddings()
    if not (n_layers and heads and head_dim) or head is None:
        return None
    not_body = {id(p) for p in head.parameters()} | {
        id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()
    }
    return ModelGeometry(
        body_params=sum(p.numel() for p in model.parameters() if id(p) not in not_body),
        head_params=sum(p.numel() for p in head.parameters()),
        n_layers=int(n_layers),
        attn_width=int(heads) * int(head_dim),
        attn_implementation=str(getattr(config, "_attn_implementation", None) or "eager"),
        logits_at_every_prompt_position=not model._supports_logits_to_keep(),
    )


def attention_flops(geometry: ModelGeometry, keys: float) -> float:
    """QK^T and AV: 2 x d_attn FLOPs each per (query, key) pair, in every layer."""
    return 4.0 * geometry.n_layers * geometry.attn_width * keys


def request_flops_useful(geometry: ModelGeometry, input_tokens: int, output_tokens: int) -> float:
    """One request on its own: its tokens, causal attention, one logit row per output token.

    The prompt and every generated token but the last are fed (the last is never fed
    back); the token at position p (1-based) attends to p keys.
    """
    fed = input_tokens + max(output_tokens - 1, 0)
    return (
        2.0 * geometry.body_params * fed
        + 2.0 * geometry.head_params * output_tokens
        + attention_flops(geometry, fed * (fed + 1) / 2)
    )


def batch_flops_executed(geometry: ModelGeometry, batch: BatchShape) -> float:
    """Every row over the padded prompt and all `steps` forward passes.

    Prefill attention is the dense P x P score matrix (eager; SDPA with a padding
    mask), or its causal triangle for kernels that skip masked blocks (flash; SDPA on
    a batch without padding). Decode step k (1..steps-1) attends to P + k keys.
    """
    width = batch.padded_prompt_tokens
    decodes = max(batch.steps - 1, 0)
    fed = width + decodes
    causal = "flash" in geometry.attn_implementation or (
        geometry.attn_implementation == "sdpa" and not batch.padded
    )
    prefill_keys = width * (width + 1) / 2 if causal else width * width
    keys = prefill_keys + decodes * width + decodes * (decodes + 1) / 2
    logit_rows = fed if geometry.logits_at_every_prompt_position else batch.steps
    return batch.rows * (
        2.0 * geometry.body_params * fed
        + 2.0 * geometry.head_params * logit_rows
        + attention_flops(geometry, keys)
    )


def estimate_flops(
    geometry: ModelGeometry | None,
    requests: Sequence[RequestRecord],
    batches: Sequence[BatchShape],
) -> FlopsResult:
    """Useful and executed FLOPs of a process; both None when the geometry is unknown."""
    tokens = sum(r.input_tokens + r.output_tokens for r in requests)
    if geometry is None:
        return FlopsResult(
            method=METHOD,
            total_flops=None,
            flops_useful=None,
            flops_executed=None,
            non_embedding_params=None,
            tokens_processed=tokens,
        )
    useful = sum(request_flops_useful(geometry, r.input_tokens, r.output_tokens) for r in requests)
    return FlopsResult(
        method=METHOD,
        total_flops=useful,
        flops_useful=useful,
        flops_executed=sum(batch_flops_executed(geometry, b) for b in batches),
        non_embedding_params=geometry.body_params + geometry.head_params,
        output_head_params=geometry.head_params,
        tokens_processed=tokens,
    )
