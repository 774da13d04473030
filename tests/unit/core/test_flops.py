"""FLOPs against PyTorch's own count of the matmuls a real `generate` ran (tiny Llama, eager)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from torch.utils.flop_counter import FlopCounterMode
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
)

from llenergymeasure.core.engines.generation import BatchOutput, encode_batches, generate_batch
from llenergymeasure.core.flops import (
    BatchShape,
    batch_flops_executed,
    estimate_flops,
    model_geometry,
    request_flops_useful,
)
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.models import resolve_model
from llenergymeasure.prompts.sources import Prompt

# The greedy first token of "hello world" on the tiny Llama: made its EOS below, so that
# request finishes after one token while the others of its batch decode on.
HELLO_FIRST_TOKEN = 577
TOLERANCE = 0.10


@pytest.fixture(scope="module")
def eager_model() -> tuple[Any, Any]:
    path = resolve_model("builtin:tiny-llama").path
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    return model, tokenizer


def counted_generate(
    model: Any, tokenizer: Any, texts: list[str], eos_token_id: int | None
) -> tuple[BatchOutput, int]:
    """One batch through the measured code path, under FlopCounterMode (2mkn per matmul)."""
    prompts = [Prompt(id=str(i), text=t) for i, t in enumerate(texts)]
    (batch,) = encode_batches(
        prompts, tokenizer, batch_size=len(prompts), use_chat_template=False, device="cpu"
    )
    config = GenerationConfig(
        max_new_tokens=10,
        do_sample=False,
        eos_token_id=eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with FlopCounterMode(display=False) as counter:
        output = generate_batch(model, batch, config, lambda: None)
    return output, counter.get_total_flops()


def test_executed_flops_match_the_counter_on_a_padded_batch_with_a_finished_row(
    eager_model: tuple[Any, Any],
) -> None:
    model, tokenizer = eager_model
    texts = ["hello world", "the quick brown fox jumps over the lazy dog", "a b c d e f"]
    output, counted = counted_generate(model, tokenizer, texts, HELLO_FIRST_TOKEN)
    first, *others = output.requests
    assert first.stopped_by_eos and first.output_tokens == 1
    assert all(r.output_tokens == 10 for r in others)
    assert [r.input_tokens for r in output.requests] == [7, 25, 7]
    assert output.shape == BatchShape(rows=3, padded_prompt_tokens=25, steps=10, padded=True)

    flops = estimate_flops(model_geometry(model), output.requests, [output.shape])

    assert flops.flops_executed == pytest.approx(counted, rel=TOLERANCE)
    # Padding and the finished row's nine steps are work the requests did not need.
    assert flops.flops_useful < 0.8 * counted
    assert flops.total_flops == flops.flops_useful
    assert flops.method == "analytic_2n_attn"


def test_useful_flops_match_the_counter_on_one_unpadded_prompt(
    eager_model: tuple[Any, Any],
) -> None:
    model, tokenizer = eager_model
    output, counted = counted_generate(model, tokenizer, ["energy per token"], None)
    (request,) = output.requests
    assert output.shape.padded is False and request.output_tokens == 10

    flops = estimate_flops(model_geometry(model), output.requests, [output.shape])

    assert flops.flops_useful == pytest.approx(counted, rel=TOLERANCE)
    assert flops.flops_executed == pytest.approx(counted, rel=TOLERANCE)


def test_parameter_counts_leave_out_the_lookup_table_and_separate_the_head(
    eager_model: tuple[Any, Any],
) -> None:
    model, _ = eager_model
    c = model.config
    attn = c.num_attention_heads * c.head_dim
    kv = c.num_key_value_heads * c.head_dim
    per_layer = 2 * c.hidden_size * (attn + kv) + 3 * c.hidden_size * c.intermediate_size
    norms = (2 * c.num_hidden_layers + 1) * c.hidden_size

    geometry = model_geometry(model)

    assert geometry.body_params == c.num_hidden_layers * per_layer + norms
    assert geometry.head_params == c.vocab_size * c.hidden_size
    assert geometry.n_layers == 2 and geometry.attn_width == 64


def test_a_tied_output_head_is_counted_once_as_the_head() -> None:
    config = LlamaConfig(
        vocab_size=500,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight

    geometry = model_geometry(model)

    total = sum(p.numel() for p in model.parameters())
    assert geometry.head_params == 500 * 32
    assert geometry.body_params == total - 500 * 32


def test_useful_flops_of_one_request_by_hand(eager_model: tuple[Any, Any]) -> None:
    geometry = model_geometry(eager_model[0])
    # 3 prompt tokens and 2 outputs: 4 tokens fed (the last output is never fed back),
    # 2 logit rows, and 1 + 2 + 3 + 4 = 10 (query, key) pairs per layer.
    expected = 2 * geometry.body_params * 4 + 2 * geometry.head_params * 2 + 4 * 2 * 64 * 10
    assert request_flops_useful(geometry, 3, 2) == expected


def test_unknown_geometry_leaves_every_figure_unknown() -> None:
    requests = [RequestRecord(prompt_id="0", input_tokens=4, output_tokens=2, stopped_by_eos=False)]
    flops = estimate_flops(None, requests, [BatchShape(1, 4, 2, False)])
    assert flops.total_flops is None and flops.flops_useful is None
    assert flops.flops_executed is None and flops.tokens_processed == 6


def test_executed_prefill_is_dense_unless_the_kernel_is_causal(
    eager_model: tuple[Any, Any],
) -> None:
    eager = model_geometry(eager_model[0])
    sdpa = replace(eager, attn_implementation="sdpa")
    flash = replace(eager, attn_implementation="flash_attention_2")
    unpadded = BatchShape(rows=1, padded_prompt_tokens=5, steps=3, padded=False)
    padded = replace(unpadded, padded=True)
    useful = request_flops_useful(eager, 5, 3)
    upper_triangle = 4 * 2 * 64 * (5 * 4 / 2)  # masked pairs of a dense 5 x 5 prefill

    assert batch_flops_executed(sdpa, unpadded) == useful
    assert batch_flops_executed(flash, padded) == useful
    assert batch_flops_executed(eager, unpadded) == useful + upper_triangle
    assert batch_flops_executed(sdpa, padded) == useful + upper_triangle


def test_a_head_without_logits_to_keep_runs_over_the_whole_prompt(
    eager_model: tuple[Any, Any],
) -> None:
    geometry = replace(model_geometry(eager_model[0]), attn_implementation="sdpa")
    batch = BatchShape(rows=2, padded_prompt_tokens=5, steps=3, padded=False)
    every_position = replace(geometry, logits_at_every_prompt_position=True)
    extra = 2 * 2 * geometry.head_params * 4  # 2 rows x 4 prompt positions before the last
    assert (
        batch_flops_executed(every_position, batch) == batch_flops_executed(geometry, batch) + extra
    )
