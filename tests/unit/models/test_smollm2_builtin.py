from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llenergymeasure.models import llem_cache_dir, resolve_model
from llenergymeasure.models.builtin import STAMP_NAME


@pytest.mark.slow
def test_smollm2_answers_capital_of_france() -> None:
    # The test run's own cache (conftest): the conversion (~20 s) happens once per run.
    resolved = resolve_model("builtin:smollm2-135m")
    assert resolved.source == "builtin"
    assert Path(resolved.path) == llem_cache_dir() / "models" / "smollm2-135m"
    assert (Path(resolved.path) / STAMP_NAME).is_file()

    tokenizer = AutoTokenizer.from_pretrained(resolved.path)
    model = AutoModelForCausalLM.from_pretrained(resolved.path, dtype=torch.float32)
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :])
    assert answer.startswith("The capital of France is Paris.")
