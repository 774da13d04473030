"""Inference FLOPs by the PaLM approximation.

FLOPs = 2 x N x tokens, where tokens are the prompt tokens actually fed plus the
tokens actually generated (padding excluded) and N counts the parameters that do a
multiply per token: every weight except the input embedding table, plus the output
projection when it is tied to that table (the lookup costs nothing, the projection
does). Attention over the context is not included; docs/methodology.md says so.
"""

from __future__ import annotations

from typing import Any

from llenergymeasure.domain.metrics import FlopsResult


def non_embedding_parameters(model: Any) -> int:
    """Parameters that take part in a matrix multiply per token."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    count = total - embedding.numel()
    output = model.get_output_embeddings()
    if output is not None and output.weight is embedding:
        count += embedding.numel()
    return int(count)


def estimate_flops_palm(non_embedding_params: int | None, tokens_processed: int) -> FlopsResult:
    """2 x N x tokens; None when the parameter count is unknown."""
    total = None
    if non_embedding_params is not None:
        total = 2.0 * non_embedding_params * tokens_processed
    return FlopsResult(
        total_flops=total,
        non_embedding_params=non_embedding_params,
        tokens_processed=tokens_processed,
    )
