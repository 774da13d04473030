"""How the model is deployed: quantization, torch.compile and the parallel layout.

docs/deployment.md says what each does and how results record it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llenergymeasure.config.base import Section


class QuantizationConfig(Section):
    """Weights stored in fewer bits (docs/deployment.md, "Quantization").

    bitsandbytes needs CUDA (4-bit NF4 or 8-bit LLM.int8); torchao's int8 weight-only
    runs on the CPU too (its int4 kernels need CUDA).
    """

    method: Literal["none", "bitsandbytes", "torchao"] = "none"
    bits: Literal[4, 8] | None = Field(
        None, description="Bits per weight; required with a method, null with none."
    )
    compute_dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        "auto",
        description="The dtype bitsandbytes' 4-bit layers compute in; auto: model.dtype. "
        "Other methods compute in model.dtype.",
    )

    @model_validator(mode="after")
    def _bits_with_method(self) -> QuantizationConfig:
        if self.method == "none" and self.bits is not None:
            raise ValueError("bits applies to a quantization method; method is none")
        if self.method != "none" and self.bits is None:
            raise ValueError(f"method {self.method} needs bits: 4 or 8")
        if self.compute_dtype != "auto" and not (self.method == "bitsandbytes" and self.bits == 4):
            raise ValueError(
                "compute_dtype applies to bitsandbytes 4-bit only; other methods compute "
                "in model.dtype"
            )
        return self


class TorchCompileConfig(Section):
    """`model.torch_compile`: `false`, `true` or `{mode: ..., backend: ...}` in a config file.

    `false` is `{enabled: false}`; `true` and a mapping without `enabled` turn it on.
    """

    enabled: bool = False
    mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = (
        "default"
    )
    backend: Literal["inductor", "cudagraphs", "aot_eager", "eager"] = Field(
        "inductor",
        description="torch.compile's backend; aot_eager and eager trace the model without "
        "generating kernels (cheap, for checking the path).",
    )

    @model_validator(mode="after")
    def _mode_needs_inductor(self) -> TorchCompileConfig:
        if self.mode != "default" and self.backend != "inductor":
            raise ValueError(
                f"mode {self.mode} applies to the inductor backend, not {self.backend}"
            )
        return self


class ParallelConfig(Section):
    """How one experiment's processes and GPUs hold the model (docs/deployment.md, "Parallelism").

    `data` groups each run their own share of the prompts on a copy of the model; a group
    is `tensor` processes that split every layer between them (transformers' `tp_plan`),
    and each process holds `pipeline` GPUs over which its layers are placed in turn
    (`device_map`, CUDA only). Processes: data x tensor; GPUs: data x tensor x pipeline.
    """

    data: int = Field(1, ge=1, le=4_096, description="Model copies, each with its own prompts.")
    tensor: int = Field(1, ge=1, le=64, description="Processes that split each layer.")
    pipeline: int = Field(1, ge=1, le=64, description="GPUs of one process, layers in turn.")

    @model_validator(mode="after")
    def _one_split_per_process(self) -> ParallelConfig:
        if self.tensor > 1 and self.pipeline > 1:
            raise ValueError(
                "tensor and pipeline cannot both exceed 1: transformers does not combine "
                "tp_plan with a device_map; choose one way to split"
            )
        return self

    @property
    def processes(self) -> int:
        """Worker processes: data x tensor."""
        return self.data * self.tensor
