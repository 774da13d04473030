"""Token counts on the real SmolLM2-135M, whose requests really end at EOS."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llenergymeasure.config.loader import validate_config
from llenergymeasure.models import resolve_model
from llenergymeasure.orchestration.launcher import run_experiment

from llem_testing import tiny_config_dict

PROMPTS = [
    "What is the capital of France?",
    "Tell me a long story about a dragon who learns to bake bread.",
    "What is the chemical symbol for gold? Answer in one word.",
    "Name a primary colour.",
]
MAX_NEW = 40


def greedy_completion(model, tokenizer, prompt: str) -> list[int]:
    """One prompt alone (no padding), greedy, cut after the first EOS."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=MAX_NEW, do_sample=False)
    new = out[0, ids["input_ids"].shape[1] :].tolist()
    eos = model.generation_config.eos_token_id
    eos = set(eos) if isinstance(eos, list) else {eos}
    for k, token in enumerate(new):
        if token in eos:
            return new[: k + 1]
    return new


@pytest.mark.slow
def test_batched_counts_match_each_prompt_run_alone(tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    source.write_text("\n".join(orjson.dumps({"prompt": p}).decode() for p in PROMPTS))
    config = validate_config(
        tiny_config_dict(
            tmp_path / "results",
            model={"name": "builtin:smollm2-135m"},
            prompts={"source": str(source), "num_prompts": None},
            generation={"max_new_tokens": MAX_NEW, "batch_size": 4},
            measurement={"warmup": {"enabled": False}, "baseline": {"enabled": False}},
        )
    )
    outcome = run_experiment(config)
    result = orjson.loads((outcome.experiment_dir / "process_0.json").read_bytes())

    path = resolve_model("builtin:smollm2-135m").path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    for prompt, request in zip(PROMPTS, result["requests"], strict=True):
        completion = greedy_completion(model, tokenizer, prompt)
        assert request["output_tokens"] == len(completion), prompt
        text = tokenizer.decode(completion)
        assert request["output_tokens"] == len(
            tokenizer(text, add_special_tokens=False)["input_ids"]
        )
        templated = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        assert request["input_tokens"] == len(
            tokenizer(templated, add_special_tokens=False)["input_ids"]
        )
    stopped = [r["stopped_by_eos"] for r in result["requests"]]
    assert any(stopped) and not all(stopped), "need requests ending both ways"
    assert result["requests"][0]["output_tokens"] < MAX_NEW
    assert result["output_tokens"] == sum(r["output_tokens"] for r in result["requests"])
    assert len(result["latency_samples"]["itl_ms"]) == result["output_tokens"] - len(PROMPTS)
