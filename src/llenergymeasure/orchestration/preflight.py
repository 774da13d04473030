"""Checks made before an experiment exists: the model, the energy backend, the launch config.

Each finds, without building or loading anything heavy, a problem that would otherwise
end the run after `raw/<id>/` was created and the baseline measured; each raises one
`LlemError` naming the field or option.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import yaml

from llenergymeasure.config.loader import parse_yaml
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.errors import ConfigError, DeviceError, ModelNotFound
from llenergymeasure.models.resolve import resolve_model
from llenergymeasure.prompts import Prompt

MAX_ACCELERATE_CONFIG_BYTES = 1 << 20


def check_model(config: ExperimentConfig) -> None:
    """The model resolves: a known builtin, a model directory, or a cached or known hub id.

    A builtin is only looked up (building it is the run's work); any other name goes
    through `resolve_model`, which builds nothing.

    Raises:
        ModelNotFound: `model.name: ...` with what was tried and how to fix it.

    """
    from llenergymeasure.models.builtin import BUILTIN_PREFIX, known_aliases

    name = config.model.name
    if name.startswith(BUILTIN_PREFIX):
        if name.removeprefix(BUILTIN_PREFIX) not in known_aliases():
            builtins = ", ".join(BUILTIN_PREFIX + alias for alias in known_aliases())
            raise ModelNotFound(
                f"model.name: unknown builtin model '{name}': known builtins are {builtins}"
            )
        return
    try:
        resolve_model(name, revision=config.model.revision)
    except ModelNotFound as exc:
        raise ModelNotFound(f"model.name: {exc}") from None


def check_energy_backend(config: ExperimentConfig, gpu_count: int) -> None:
    """An explicitly requested `nvml` or `rapl` backend can run on this machine.

    Args:
        config: the experiment config.
        gpu_count: CUDA devices visible to this process.

    Raises:
        DeviceError: naming `measurement.energy.backend` and what to use instead.

    """
    from llenergymeasure.core.energy_backends.nvml_library import nvml_available
    from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, find_rapl_packages

    backend = config.measurement.energy.backend
    instead = "set it to auto, estimate or none"
    if backend == "nvml" and gpu_count == 0:
        raise DeviceError(
            f"measurement.energy.backend: nvml needs a CUDA device and none is visible; {instead}"
        )
    if backend == "nvml" and not nvml_available():
        raise DeviceError(
            f"measurement.energy.backend: nvml does not start on this machine; {instead}"
        )
    if backend == "rapl" and not find_rapl_packages(POWERCAP_ROOT):
        raise DeviceError(
            f"measurement.energy.backend: rapl is unavailable: no readable counter under "
            f"{POWERCAP_ROOT} (needs an Intel/AMD CPU and read access to energy_uj); {instead}"
        )


def check_attention(config: ExperimentConfig, gpu_count: int) -> None:
    """`model.attn_implementation: flash_attention_2` has a CUDA device and flash_attn.

    Args:
        config: the experiment config.
        gpu_count: CUDA devices visible to this process.

    Raises:
        ConfigError: naming `model.attn_implementation` and what to use instead.

    """
    if config.model.attn_implementation != "flash_attention_2":
        return
    instead = "use sdpa or eager"
    if gpu_count == 0:
        raise ConfigError(
            "model.attn_implementation: flash_attention_2 needs a CUDA device and none is "
            f"visible; {instead}"
        )
    if importlib.util.find_spec("flash_attn") is None:
        raise ConfigError(
            "model.attn_implementation: flash_attention_2 needs the flash_attn package, which "
            f"is not installed; install it (pip install flash-attn) or {instead}"
        )


def check_batch_budget(config: ExperimentConfig, prompts: Sequence[Prompt]) -> None:
    """Under `batching: token_budget`, every prompt fits `max_batch_tokens` on its own.

    With `prompts.truncate`, a prompt counts as the tokens it keeps.

    Raises:
        ConfigError: naming the first prompt longer than the budget.

    """
    generation = config.generation
    if generation.batching != "token_budget" or generation.max_batch_tokens is None:
        return
    context = model_context_length(config) if config.prompts.truncate else None
    keep = context - generation.max_new_tokens if context is not None else None
    for prompt, length in zip(prompts, prompt_token_counts(config, prompts), strict=True):
        kept = min(length, keep) if keep is not None else length
        if kept > generation.max_batch_tokens:
            raise ConfigError(
                f"generation.max_batch_tokens: prompt {prompt.id!r} alone is {kept} tokens, "
                f"more than the budget of {generation.max_batch_tokens}; raise the budget"
            )


def check_accelerate_config(path: Path) -> None:
    """The `--accelerate-config` file exists and accelerate can read it.

    accelerate's own reader is called here, so that a file it refuses is one line now
    rather than its traceback after the experiment was created.

    Raises:
        ConfigError: `--accelerate-config <path>: <problem>`.

    """
    from accelerate.commands.config.config_args import load_config_from_file

    where = f"--accelerate-config {path}"
    if not path.is_file():
        raise ConfigError(f"{where}: no such file")
    if path.stat().st_size > MAX_ACCELERATE_CONFIG_BYTES:
        raise ConfigError(f"{where}: larger than {MAX_ACCELERATE_CONFIG_BYTES} bytes")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{where}: invalid YAML{line}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where}: values nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of accelerate settings")
    try:
        load_config_from_file(str(path))
    # accelerate raises ValueError, TypeError, KeyError... for a file it cannot use.
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{where}: accelerate cannot use it: {_first_line(exc)}") from None


def check_prompt_lengths(config: ExperimentConfig, prompts: Sequence[Prompt]) -> None:
    """Every prompt, as the engine tokenises it, plus `max_new_tokens` fits the model's context.

    Only the tokenizer and the model's config are loaded. A model whose config names no
    context length (`max_position_embeddings`) is not checked. With `prompts.truncate`,
    only `max_new_tokens` itself must fit: longer prompts are cut when they are encoded.

    Raises:
        ConfigError: naming the first prompt too long (its id and token count), or
            `generation.max_new_tokens` when it alone fills the context.

    """
    context = model_context_length(config)
    if context is None:
        return
    max_new = max(config.generation.max_new_tokens, config.measurement.warmup.max_new_tokens)
    if max_new >= context:
        raise ConfigError(
            f"generation.max_new_tokens: {max_new} leaves no room for a prompt in the "
            f"{context} positions of {config.model.name}"
        )
    if config.prompts.truncate:
        return
    budget = context - max_new
    for prompt, length in zip(prompts, prompt_token_counts(config, prompts), strict=True):
        if length > budget:
            raise ConfigError(
                f"prompts: prompt {prompt.id!r} is {length} tokens; with max_new_tokens "
                f"{max_new} that exceeds the {context} positions of {config.model.name}; "
                "shorten it, or set prompts.truncate: true to cut its start"
            )


def model_context_length(config: ExperimentConfig) -> int | None:
    """`max_position_embeddings` of the model's config; None when it names none."""
    from transformers import AutoConfig

    resolved = resolve_model(config.model.name, revision=config.model.revision)
    model_config = AutoConfig.from_pretrained(
        resolved.path,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
    )
    length = getattr(model_config, "max_position_embeddings", None)
    return length if isinstance(length, int) and length > 0 else None


def prompt_token_counts(config: ExperimentConfig, prompts: Sequence[Prompt]) -> list[int]:
    """Tokens of each prompt as `encode_batches` gives them to the model (chat template too)."""
    from transformers import AutoTokenizer

    from llenergymeasure.core.engines.generation import prompt_texts

    resolved = resolve_model(config.model.name, revision=config.model.revision)
    tokenizer = AutoTokenizer.from_pretrained(
        resolved.path,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
    )
    use_template = config.prompts.chat_template
    templated = use_template and getattr(tokenizer, "chat_template", None) is not None
    texts = prompt_texts(list(prompts), tokenizer, use_template)
    encoded = tokenizer(texts, add_special_tokens=not templated)["input_ids"]
    return [len(ids) for ids in encoded]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
