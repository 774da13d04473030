"""Token counts in padded batches on a tiny Llama whose requests really stop at EOS.

The builtin tiny Llama never emits EOS, so every request runs to `max_new_tokens` and
padding never follows an EOS. This copy scales the EOS row of its output layer by 3:
greedy decoding then stops after 2 to 7 tokens on some prompts and runs to the limit
on others, so each batch mixes finished and running requests. Each request's counts
must equal those of its prompt generated alone, without padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.engines.transformers import TransformersEngine
from llenergymeasure.core.lifecycle import RunContext, run_measured
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.prompts import Prompt, load_prompts

from llem_testing import build_eos_llama, one_torch_thread, tiny_config_dict

MAX_NEW = 8


@dataclass(frozen=True)
class EosRun:
    model_dir: Path
    prompts: list[Prompt]
    result: RawProcessResult


@pytest.fixture(scope="module")
def eos_run(tmp_path_factory: pytest.TempPathFactory) -> EosRun:
    root = tmp_path_factory.mktemp("eos")
    model_dir = build_eos_llama(root / "eos-llama")
    config = validate_config(
        tiny_config_dict(
            root / "results",
            model={"name": str(model_dir)},
            generation={"max_new_tokens": MAX_NEW, "batch_size": 4},
            measurement={"baseline": {"enabled": False}, "energy": {"backend": "none"}},
        )
    )
    prompts = load_prompts(config.prompts)
    with one_torch_thread():
        engine = TransformersEngine(config, "cpu")
        run = run_measured(engine, config, RunContext(experiment_id="eos"), prompts)
    return EosRun(model_dir, prompts, run.result)


def generated_alone(model, tokenizer, text: str) -> tuple[int, list[int]]:
    """Prompt length and greedy completion (cut after the first EOS) of one prompt alone."""
    ids = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(
            **ids, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    for k, token in enumerate(new):
        if token == tokenizer.eos_token_id:
            return ids["input_ids"].shape[1], new[: k + 1]
    return ids["input_ids"].shape[1], new


def test_batched_counts_match_each_prompt_generated_alone(eos_run: EosRun) -> None:
    tokenizer = AutoTokenizer.from_pretrained(eos_run.model_dir)
    model = AutoModelForCausalLM.from_pretrained(eos_run.model_dir, dtype=torch.float32).eval()
    requests = eos_run.result.requests
    assert [r.prompt_id for r in requests] == [p.id for p in eos_run.prompts]
    for prompt, request in zip(eos_run.prompts, requests, strict=True):
        with one_torch_thread():
            input_tokens, completion = generated_alone(model, tokenizer, prompt.text)
        assert request.input_tokens == input_tokens, prompt.id
        assert request.output_tokens == len(completion), prompt.id
        assert request.stopped_by_eos == (completion[-1] == tokenizer.eos_token_id), prompt.id


def test_the_batches_mix_finished_and_running_requests(eos_run: EosRun) -> None:
    counts = [r.output_tokens for r in eos_run.result.requests]
    stopped = [r.stopped_by_eos for r in eos_run.result.requests]
    assert any(stopped) and not all(stopped), counts
    assert len(set(counts)) >= 3, counts
    batches = [stopped[k : k + 4] for k in range(0, len(stopped), 4)]
    assert any(any(b) and not all(b) for b in batches), "no batch pads after an EOS"


def test_totals_and_latency_samples_follow_the_real_counts(eos_run: EosRun) -> None:
    result = eos_run.result
    assert result.output_tokens == sum(r.output_tokens for r in result.requests)
    assert result.output_tokens < MAX_NEW * result.num_requests
    assert result.input_tokens == sum(r.input_tokens for r in result.requests)
    samples = result.latency_samples
    assert len(samples.ttft_ms) == len(samples.e2e_ms) == result.num_requests
    assert len(samples.itl_ms) == result.output_tokens - result.num_requests
