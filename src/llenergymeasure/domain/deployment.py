"""How a model was deployed, as results record it: its parallel layout and quantization.

Requested settings are the config's; these records say what the run actually did.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
