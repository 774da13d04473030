"""One real measured run of the tiny Llama in this process: order of phases and figures.

The run uses the CPU estimate backend, so it has an energy to divide; its figures are
checked against what the run itself recorded (tokens, window, per-request latencies).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.engines.transformers import TransformersEngine
from llenergymeasure.core.lifecycle import MeasuredRun, RunContext, run_measured
from llenergymeasure.prompts import load_prompts

from llem_testing import one_torch_thread, tiny_config_dict

BATCH_SIZE = 2


@dataclass(frozen=True)
class ObservedRun:
    """The run, and each progress event with whether the model was loaded at that moment."""

    run: MeasuredRun
    events: list[tuple[str, int, int, bool]]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> ObservedRun:
    config = validate_config(
        tiny_config_dict(
            tmp_path_factory.mktemp("lifecycle"),
            prompts={"num_prompts": 6},
            generation={"max_new_tokens": 6, "batch_size": BATCH_SIZE},
            measurement={"energy": {"backend": "estimate"}},
        )
    )
    events: list[tuple[str, int, int, bool]] = []
    engine = TransformersEngine(config, "cpu")

    def progress(phase: str, done: int, total: int) -> None:
        events.append((phase, done, total, engine.model is not None))

    context = RunContext(experiment_id="lifecycle", progress=progress)
    with one_torch_thread():
        run = run_measured(engine, config, context, load_prompts(config.prompts))
    return ObservedRun(run, events)


def test_the_baseline_is_measured_before_the_model_is_loaded(observed: ObservedRun) -> None:
    phases = [(phase, done) for phase, done, _, _ in observed.events]
    assert phases.index(("baseline", 1)) < phases.index(("loading model", 0))
    loaded_at = {(phase, done): loaded for phase, done, _, loaded in observed.events}
    assert loaded_at[("baseline", 1)] is False
    assert loaded_at[("loading model", 1)] is True


def test_tokens_per_second_counts_output_tokens_only(observed: ObservedRun) -> None:
    result = observed.run.result
    assert result.input_tokens > 0 and result.output_tokens > 0
    assert result.tokens_per_second == pytest.approx(
        result.output_tokens / result.inference_duration_s
    )


def test_energy_per_token_divides_by_output_tokens(observed: ObservedRun) -> None:
    result = observed.run.result
    assert result.energy_breakdown.raw_j is not None and result.energy_breakdown.raw_j > 0
    assert result.energy_per_output_token_j == pytest.approx(
        result.energy_breakdown.raw_j / result.output_tokens
    )


def test_request_latencies_are_timed_from_their_own_batch(observed: ObservedRun) -> None:
    """Batches run one after another, so their longest requests fit in the window together.

    Timed from the window's start instead, the third batch's requests alone would take
    about the whole window, and the three together about twice it; and the third batch's
    first token would come after the two batches before it had ended.
    """
    result = observed.run.result
    e2e = result.latency_samples.e2e_ms
    ttft = result.latency_samples.ttft_ms
    assert len(e2e) == result.num_requests == 6
    longest_per_batch = [max(e2e[k : k + BATCH_SIZE]) for k in range(0, len(e2e), BATCH_SIZE)]
    assert sum(longest_per_batch) <= result.inference_duration_s * 1000.0
    first_per_batch = [min(ttft[k : k + BATCH_SIZE]) for k in range(0, len(ttft), BATCH_SIZE)]
    # Its own prefill: one forward pass, against the 2 x 6 steps of the batches before it.
    assert first_per_batch[2] < longest_per_batch[0] + longest_per_batch[1]


def test_the_baseline_is_subtracted_over_the_energy_window(observed: ObservedRun) -> None:
    """The window the energy covers: the busy window, plus the stop, in a one-process run."""
    result = observed.run.result
    breakdown = result.energy_breakdown
    assert breakdown.inference_duration_s == result.energy_window_s
    assert result.inference_duration_s <= result.energy_window_s
    assert result.energy_window_s < result.inference_duration_s + 1.0
    assert breakdown.baseline_power_w is not None
    assert breakdown.adjusted_j == pytest.approx(
        max(0.0, breakdown.raw_j - breakdown.baseline_power_w * result.energy_window_s)
    )
