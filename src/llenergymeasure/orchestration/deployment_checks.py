"""Checks of the deployment (parallelism, quantization) made before an experiment exists.

Each reads only the model's `config.json` and what this machine offers (CUDA devices,
installed packages), and raises one `ConfigError` naming the field, so that a model that
cannot be split as asked, or a method this machine cannot run, is one line and exit code
2 instead of a traceback after `raw/<id>/` was created.
"""

from __future__ import annotations

import importlib.util

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.errors import ConfigError, DeviceError
from llenergymeasure.models.resolve import resolve_model

# The packages each quantization method imports, and how to install them.
QUANTIZATION_PACKAGES = {"bitsandbytes": "bitsandbytes", "torchao": "torchao"}
INSTALL_HINT = "pip install 'llenergymeasure[quantization]'"


def check_deployment(config: ExperimentConfig, gpu_count: int) -> None:
    """The parallel layout and the quantization can run here, on this model.

    Args:
        config: the experiment config.
        gpu_count: CUDA devices visible to this process (0 without CUDA).

    Raises:
        ConfigError: naming `parallel.*` or `model.quantization.*` and why.
        DeviceError: a CUDA-only choice on a machine without CUDA.

    """
    check_parallel(config, gpu_count)
    check_quantization(config, gpu_count)


def check_parallel(config: ExperimentConfig, gpu_count: int) -> None:
    """Tensor groups split the model's heads evenly; pipelines have GPUs; the GPUs suffice."""
    parallel = config.parallel
    if parallel.tensor > 1:
        if parallel.data > 1:
            raise ConfigError(
                f"parallel: data {parallel.data} with tensor {parallel.tensor}: transformers' "
                "tensor parallelism spans every process of a launch, so tensor > 1 needs "
                "data: 1; run each data group as its own experiment"
            )
        check_heads_split(config, parallel.tensor)
    if parallel.pipeline > 1:
        if gpu_count == 0:
            raise DeviceError(
                f"parallel.pipeline: {parallel.pipeline} places the model's layers over "
                "several GPUs (device_map) and needs CUDA; none is visible"
            )
        layers = model_config_value(config, "num_hidden_layers")
        if isinstance(layers, int) and parallel.pipeline > layers:
            raise ConfigError(
                f"parallel.pipeline: {parallel.pipeline} exceeds the {layers} layers of "
                f"{config.model.name}"
            )
    gpus_needed = parallel.processes * parallel.pipeline
    if parallel.pipeline > 1 and gpus_needed > gpu_count:
        raise ConfigError(
            f"parallel: data {parallel.data} x tensor {parallel.tensor} x pipeline "
            f"{parallel.pipeline} needs {gpus_needed} GPUs, but {gpu_count} are visible"
        )


def check_heads_split(config: ExperimentConfig, tensor: int) -> None:
    """Every attention and key-value head count of the model divides by `tensor`."""
    for field in ("num_attention_heads", "num_key_value_heads"):
        heads = model_config_value(config, field)
        if isinstance(heads, int) and heads % tensor:
            raise ConfigError(
                f"parallel.tensor: {tensor} does not divide the {heads} {field} of "
                f"{config.model.name}; use a tensor size that divides {heads}"
            )
    if model_config_value(config, "base_model_tp_plan") is None:
        raise ConfigError(
            f"parallel.tensor: {tensor}: {config.model.name} has no tensor-parallel plan in "
            "transformers (its config names no base_model_tp_plan)"
        )


def check_quantization(config: ExperimentConfig, gpu_count: int) -> None:
    """The method runs on this machine and its package is installed."""
    quantization = config.model.quantization
    method = quantization.method
    if method == "none":
        return
    where = f"model.quantization.method: {method}"
    if method == "bitsandbytes" and gpu_count == 0:
        raise DeviceError(
            f"{where} needs CUDA and none is visible; on the CPU use torchao with bits: 8"
        )
    if method == "torchao" and quantization.bits == 4 and gpu_count == 0:
        raise DeviceError(
            f"{where} with bits: 4 needs CUDA (torchao's int4 kernels); on the CPU use bits: 8"
        )
    if config.parallel.tensor > 1:
        raise ConfigError(
            f"{where} with parallel.tensor: {config.parallel.tensor}: quantized weights are "
            "not split between processes; use parallel.pipeline or data instead"
        )
    package = QUANTIZATION_PACKAGES[method]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"{where}: the package {package} is not installed; {INSTALL_HINT}")


def model_config_value(config: ExperimentConfig, field: str) -> object:
    """One field of the model's transformers config (its `config.json`); None when absent."""
    from transformers import AutoConfig

    resolved = resolve_model(config.model.name, revision=config.model.revision)
    model_config = AutoConfig.from_pretrained(
        resolved.path,
        revision=config.model.revision,
        trust_remote_code=config.model.trust_remote_code,
    )
    return getattr(model_config.get_text_config(), field, None)
