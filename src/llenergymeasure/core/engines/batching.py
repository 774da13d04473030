"""Which prompts share a batch: `generation.batching` as lists of prompt positions.

A batch is left-padded to its longest prompt, so every shorter prompt costs padded
positions the model computes and nobody reads. The strategies:

- static: consecutive runs of `batch_size` prompts in the order given;
- sorted: the same after a stable sort by token length, longest first (ties keep their
  order), so that prompts of similar length share a batch;
- token_budget: sorted, then each batch takes the next prompt while its rows times its
  longest prompt stay within `max_batch_tokens` and its rows within `batch_size`.

The order given is the process's shard after `prompts.order` (a shuffle with
`prompts.seed` happens first); sorting reorders only within the shard, and each record
keeps its prompt's id.
"""

from __future__ import annotations

from typing import Literal

Batching = Literal["static", "sorted", "token_budget"]


def plan_batches(
    lengths: list[int],
    batching: Batching,
    batch_size: int,
    max_batch_tokens: int | None = None,
) -> list[list[int]]:
    """Positions into `lengths` (prompt token counts), one list per batch, in run order.

    Args:
        lengths: each prompt's tokens, as the model receives it (after truncation).
        batching: the strategy (`generation.batching`).
        batch_size: the most rows a batch holds.
        max_batch_tokens: token_budget's budget of padded prompt positions per batch.

    Raises:
        ValueError: under token_budget, a prompt alone is longer than the budget
            (preflight refuses such a config before anything runs).

    """
    if batching == "static":
        return _chunks(list(range(len(lengths))), batch_size)
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    if batching == "sorted":
        return _chunks(order, batch_size)
    if max_batch_tokens is None:
        raise ValueError("batching token_budget needs max_batch_tokens")
    return _within_budget(order, lengths, max_batch_tokens, batch_size)


def padded_positions(lengths: list[int]) -> int:
    """Prompt positions of a left-padded batch of prompts of these lengths."""
    return len(lengths) * max(lengths, default=0)


def _chunks(order: list[int], size: int) -> list[list[int]]:
    return [order[start : start + size] for start in range(0, len(order), size)]


def _within_budget(
    order: list[int], lengths: list[int], budget: int, max_rows: int
) -> list[list[int]]:
    """Longest first, so a batch's first prompt is its longest: rows x that length is its size."""
    batches: list[list[int]] = []
    for i in order:
        if lengths[i] > budget:
            raise ValueError(
                f"a prompt of {lengths[i]} tokens exceeds max_batch_tokens {budget} on its own"
            )
        current = batches[-1] if batches else None
        if (
            current is not None
            and len(current) < max_rows
            and padded_positions([lengths[j] for j in [*current, i]]) <= budget
        ):
            current.append(i)
        else:
            batches.append([i])
    return batches
