"""`generation.batching`: which prompts share a batch, on real token counts."""

from __future__ import annotations

import itertools
import random

import pytest

from llenergymeasure.core.engines.batching import padded_positions, plan_batches

LENGTHS = [15, 32, 162, 11, 70, 17, 841, 58, 153, 13, 8, 67]


def test_static_keeps_the_order_given() -> None:
    assert plan_batches(LENGTHS, "static", 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


def test_sorted_puts_the_longest_first_and_ties_keep_their_order() -> None:
    batches = plan_batches([5, 9, 5, 9, 1], "sorted", 2)
    assert batches == [[1, 3], [0, 2], [4]]


def test_sorted_pads_less_than_static_on_the_bundled_lengths() -> None:
    def positions(batches: list[list[int]]) -> int:
        return sum(padded_positions([LENGTHS[i] for i in b]) for b in batches)

    assert positions(plan_batches(LENGTHS, "sorted", 4)) < positions(
        plan_batches(LENGTHS, "static", 4)
    )


@pytest.mark.parametrize("seed", range(20))
def test_token_budget_batches_never_exceed_the_budget(seed: int) -> None:
    rng = random.Random(seed)
    lengths = [rng.randint(1, 300) for _ in range(rng.randint(1, 60))]
    budget = rng.randint(300, 2_000)
    batches = plan_batches(lengths, "token_budget", 16, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(padded_positions([lengths[i] for i in b]) <= budget for b in batches)
    assert all(len(b) <= 16 for b in batches)
    # Filled: the next batch's first prompt would not have fitted in the one before.
    for before, after in itertools.pairwise(batches):
        grown = [lengths[i] for i in [*before, after[0]]]
        assert len(before) == 16 or padded_positions(grown) > budget


def test_a_prompt_longer_than_the_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="841 tokens exceeds max_batch_tokens 500"):
        plan_batches(LENGTHS, "token_budget", 8, 500)
