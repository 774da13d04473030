"""The subtraction record: what it derives and what it warns about."""

from __future__ import annotations

from llenergymeasure.domain.phase_split import PhaseSubtraction


def record(full_j: float, prefill_j: float, *, requests: int = 4, output_tokens: int = 20):
    return PhaseSubtraction.build(
        boundary="gpu",
        full_j=full_j,
        prefill_j=prefill_j,
        full_above_idle_j=full_j - 10.0,
        prefill_above_idle_j=prefill_j - 2.0,
        full_window_s=12.0,
        prefill_window_s=11.0,
        num_requests=requests,
        prefill_tokens=400,
        prefill_output_tokens=requests,
        full_output_tokens=output_tokens,
    )


def test_decode_is_the_remainder_and_per_token_figures_follow() -> None:
    phase = record(100.0, 30.0)
    assert (phase.decode_j, phase.decode_above_idle_j, phase.decode_tokens) == (70.0, 62.0, 16)
    assert phase.prefill_j_per_token == 30.0 / 400
    assert phase.decode_j_per_token == 70.0 / 16
    assert phase.warnings == []


def test_a_negative_decode_is_kept_and_said() -> None:
    phase = record(30.0, 31.0)
    assert phase.decode_j == -1.0
    assert any("decode energy is negative" in w for w in phase.warnings)


def test_without_decode_tokens_decode_is_unknown() -> None:
    phase = record(30.0, 29.0, output_tokens=4)
    assert phase.decode_j is None and phase.decode_j_per_token is None
    assert any("no decode to split off" in w for w in phase.warnings)
