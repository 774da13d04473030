"""Energy split into prefill and decode by subtraction (optimum-benchmark's method).

A second window runs the main window's prompts again with one output token each: the
prefill pass. Its energy is the prefill energy; the main window's less it is the decode
energy. Measured, not attributed (`domain/load.py::AttributedEnergy` is the per-step
split): it assumes the prompts cost the same in both passes, and every figure carries
the noise of two windows (docs/methodology.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SUBTRACTION_METHOD = "subtraction (optimum-benchmark)"


class PhaseSubtraction(BaseModel):
    """The headline boundary's energy of a full and a prefill-only pass of the same prompts.

    `prefill_j` is the prefill pass's window; `decode_j = full_j - prefill_j` (negative
    where the prefill pass cost more: a warning says so). The prefill pass produced each
    request's first token, so `decode_tokens` are the output tokens after the first.
    Per-token figures: `prefill_j` per prompt token, `decode_j` per decode token.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    method: Literal["subtraction (optimum-benchmark)"] = SUBTRACTION_METHOD
    boundary: str | None = Field(description="The energy boundary of every figure (headline).")
    full_j: float | None = Field(description="The main window's energy (its headline raw_j).")
    prefill_j: float | None
    decode_j: float | None = Field(description="full_j - prefill_j; None where meaningless.")
    full_above_idle_j: float | None = None
    prefill_above_idle_j: float | None = None
    decode_above_idle_j: float | None = Field(
        None, description="full_above_idle_j - prefill_above_idle_j."
    )
    full_window_s: float
    prefill_window_s: float
    num_requests: int = Field(ge=0, description="Requests of the prefill pass.")
    prefill_tokens: int = Field(ge=0, description="Prompt tokens of the prefill pass.")
    prefill_output_tokens: int = Field(
        ge=0, description="Tokens the prefill pass generated: one per request."
    )
    decode_tokens: int = Field(description="The main window's output tokens after each first.")
    prefill_j_per_token: float | None = Field(description="prefill_j per prompt token.")
    decode_j_per_token: float | None = Field(description="decode_j per decode token.")
    warnings: list[str] = Field(default_factory=list)

    @classmethod
    def build(
        cls,
        *,
        boundary: str | None,
        full_j: float | None,
        prefill_j: float | None,
        full_above_idle_j: float | None,
        prefill_above_idle_j: float | None,
        full_window_s: float,
        prefill_window_s: float,
        num_requests: int,
        prefill_tokens: int,
        prefill_output_tokens: int,
        full_output_tokens: int,
        warnings: Sequence[str] = (),
    ) -> PhaseSubtraction:
        """The record from both windows' figures; decode and per-token figures derived here."""
        notes = list(warnings)
        decode_tokens = full_output_tokens - prefill_output_tokens
        decode_j = _difference(full_j, prefill_j)
        if decode_tokens <= 0:
            notes.append(
                f"the full pass generated {full_output_tokens} token(s), no more than the "
                f"prefill pass's {prefill_output_tokens}: no decode to split off"
            )
            decode_j = None
        elif decode_j is not None and decode_j < 0:
            notes.append(
                f"decode energy is negative ({decode_j:.4g} J): the prefill pass "
                f"({prefill_j:.4g} J) cost more than the full pass ({full_j:.4g} J), so the "
                "windows' noise exceeds the decode energy"
            )
        decode_above_idle_j = (
            _difference(full_above_idle_j, prefill_above_idle_j) if decode_j is not None else None
        )
        return cls(
            boundary=boundary,
            full_j=full_j,
            prefill_j=prefill_j,
            decode_j=decode_j,
            full_above_idle_j=full_above_idle_j,
            prefill_above_idle_j=prefill_above_idle_j,
            decode_above_idle_j=decode_above_idle_j,
            full_window_s=full_window_s,
            prefill_window_s=prefill_window_s,
            num_requests=num_requests,
            prefill_tokens=prefill_tokens,
            prefill_output_tokens=prefill_output_tokens,
            decode_tokens=decode_tokens,
            prefill_j_per_token=_per(prefill_j, prefill_tokens),
            decode_j_per_token=_per(decode_j, decode_tokens),
            warnings=notes,
        )

    @classmethod
    def combine(
        cls, parts: Sequence[PhaseSubtraction], counted: Sequence[PhaseSubtraction]
    ) -> PhaseSubtraction:
        """Processes that measured separate devices: energies summed, windows the longest.

        `counted` are the parts whose tokens count (one per data group, as for the
        headline's tokens); every part's energy counts, as every rank's device energy does.
        The decode and per-token figures are derived again from the sums; each part's
        warnings are kept (once), a process's negative decode energy among them.
        """
        warnings = list(dict.fromkeys(w for p in parts for w in p.warnings))
        return cls.build(
            boundary=parts[0].boundary,
            full_j=_sum([p.full_j for p in parts]),
            prefill_j=_sum([p.prefill_j for p in parts]),
            full_above_idle_j=_sum([p.full_above_idle_j for p in parts]),
            prefill_above_idle_j=_sum([p.prefill_above_idle_j for p in parts]),
            full_window_s=max(p.full_window_s for p in parts),
            prefill_window_s=max(p.prefill_window_s for p in parts),
            num_requests=sum(p.num_requests for p in counted),
            prefill_tokens=sum(p.prefill_tokens for p in counted),
            prefill_output_tokens=sum(p.prefill_output_tokens for p in counted),
            full_output_tokens=sum(p.decode_tokens + p.prefill_output_tokens for p in counted),
            warnings=warnings,
        )


def _difference(total: float | None, part: float | None) -> float | None:
    return None if total is None or part is None else total - part


def _per(energy_j: float | None, tokens: int) -> float | None:
    return energy_j / tokens if energy_j is not None and tokens > 0 else None


def _sum(values: Sequence[float | None]) -> float | None:
    return None if any(v is None for v in values) else float(sum(values))  # type: ignore[arg-type]
