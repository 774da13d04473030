"""How a model was deployed, as results record it: layout, quantization, each knob, padding.

Requested settings are the config's; these records say what the run actually did. A
knob the library did not honour as asked (another attention kernel, another dtype, a
forward that was not compiled) shows as requested != effective here, and as a
`deployment_fallback` warning in the result.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field, computed_field


class ParallelShape(BaseModel):
    """The experiment's layout: data groups of `tensor_size` processes of `pipeline_size` GPUs."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    data_groups: int = Field(ge=1)
    tensor_size: int = Field(ge=1)
    pipeline_size: int = Field(ge=1)


class ParallelPlacement(ParallelShape):
    """One process's place in the layout.

    Every rank of a data group runs the group's prompts; the group's requests and tokens
    are counted once, from its rank 0 (`counts_requests`); every rank's own GPUs count
    for energy.
    """

    data_group: int = Field(ge=0)
    tensor_rank: int = Field(ge=0)

    @property
    def counts_requests(self) -> bool:
        """True for the rank whose requests stand for its group's."""
        return self.tensor_rank == 0


class QuantizationRecord(BaseModel):
    """What quantization did to the weights, as loaded.

    Attributes:
        method: `bitsandbytes` or `torchao` (the config's).
        bits: bits per quantized weight (the config's).
        compute_dtype: the dtype the quantized layers compute in.
        quantized_weights: weight tensors stored in an integer format after loading; 0
            means the method changed nothing (a warning says so).
        unquantized_memory_mb: what the same parameters take in the model's dtype.

    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    method: str
    bits: int
    compute_dtype: str
    quantized_weights: int = Field(ge=0)
    unquantized_memory_mb: float | None = Field(None, ge=0)


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class PaddingStats(_Record):
    """Positions the model computed for padding, over the window's batches.

    A left-padded batch of `rows` prompts has `rows x longest` prompt positions, of
    which `prompt_real_tokens` are the prompts' own; decoding runs every row until the
    longest request ends, so the positions after a request's EOS are generated padding.
    Across processes the counts sum, and the shares are recomputed from the sums.
    """

    prompt_real_tokens: int = Field(ge=0, description="Sum of the prompts' own tokens.")
    prompt_positions: int = Field(ge=0, description="Sum over batches of rows x longest prompt.")
    output_real_tokens: int = Field(ge=0, description="Tokens the requests generated (to EOS).")
    output_positions: int = Field(ge=0, description="Sum over batches of rows x decoding steps.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prompt_padding_tokens(self) -> int:
        """Padded prompt positions."""
        return self.prompt_positions - self.prompt_real_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def padding_share(self) -> float | None:
        """Padded prompt positions over the prompts' own tokens (0: no padding)."""
        real = self.prompt_real_tokens
        return self.prompt_padding_tokens / real if real else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def output_padding_share(self) -> float | None:
        """Positions decoded after their request's EOS over the tokens really generated."""
        real = self.output_real_tokens
        return (self.output_positions - real) / real if real else None

    @classmethod
    def combine(cls, parts: Sequence[PaddingStats | None]) -> PaddingStats | None:
        """The sum over processes; None where any process has none (an older file)."""
        if not parts or any(p is None for p in parts):
            return None
        known = [p for p in parts if p is not None]
        return cls(
            prompt_real_tokens=sum(p.prompt_real_tokens for p in known),
            prompt_positions=sum(p.prompt_positions for p in known),
            output_real_tokens=sum(p.output_real_tokens for p in known),
            output_positions=sum(p.output_positions for p in known),
        )


class DeploymentRecord(_Record):
    """Each knob of the deployment as the config asked and as the engine ran it.

    `*_effective` is read back from the loaded model or the generate call (None where
    this process ran nothing to read it from).
    """

    batching: str
    max_batch_tokens: int | None = None
    batch_count: int = Field(ge=0, description="Batches the window ran.")
    attn_implementation_requested: str
    attn_implementation_effective: str | None = Field(
        None, description="The model config's `_attn_implementation` after loading."
    )
    dtype_requested: str
    dtype_effective: str | None = Field(None, description="The dtype of the loaded weights.")
    torch_compile_requested: str | None = Field(
        None, description="`<backend>:<mode>` when model.torch_compile is on; None when off."
    )
    torch_compile_effective: bool | None = Field(
        None, description="Whether compilation produced graphs for the forward."
    )
    compiled_graphs: int | None = Field(
        None, ge=0, description="Graphs torch compiled for the forward before the window."
    )
    compile_s: float | None = Field(
        None,
        ge=0,
        description="Wall time of the generate calls that compiled the forward (their own "
        "inference included), before warmup and outside the energy window; None uncompiled.",
    )
    compile_end_unix_s: float | None = Field(
        None, description="When the compiling calls ended; the energy window opens after."
    )
    window_compiled_graphs: int | None = Field(
        None,
        ge=0,
        description="Graphs compiled during the window (a shape not seen before compiling); "
        "None uncompiled. Above 0, compile time is inside the window and a warning says so.",
    )
    cache_implementation_requested: str
    cache_implementation_effective: str | None = Field(
        None, description="The KV cache class generate used (DynamicCache, StaticCache, ...)."
    )

    def fallbacks(self) -> list[str]:
        """`knob: requested X, ran Y` for each knob the engine did not honour as asked."""
        pairs = [
            (
                "model.attn_implementation",
                self.attn_implementation_requested,
                self.attn_implementation_effective,
            ),
            ("model.dtype", self.dtype_requested, self.dtype_effective),
            (
                "generation.cache_implementation",
                self.cache_implementation_requested,
                _cache_kind(self.cache_implementation_effective),
            ),
        ]
        found = [
            f"{knob}: requested {asked}, ran {ran}"
            for knob, asked, ran in pairs
            if asked != "auto" and ran is not None and asked != ran
        ]
        if self.torch_compile_requested is not None and self.torch_compile_effective is False:
            found.append(
                f"model.torch_compile: requested {self.torch_compile_requested}, "
                "no graph was compiled"
            )
        if self.window_compiled_graphs:
            found.append(
                f"model.torch_compile: {self.window_compiled_graphs} graph(s) compiled inside "
                "the energy window (batch shapes not seen before it); their compile time is "
                "in the window's energy"
            )
        return found


def _cache_kind(class_name: str | None) -> str | None:
    """`StaticCache` -> static, `DynamicCache` -> dynamic; other classes as they are."""
    if class_name is None:
        return None
    kinds = {"StaticCache": "static", "DynamicCache": "dynamic"}
    return kinds.get(class_name, class_name)
