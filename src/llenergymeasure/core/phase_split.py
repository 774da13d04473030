"""The prefill pass of `measurement.phase_split: subtraction` (optimum-benchmark's method).

After the main window, a second window runs the same workload with one output token per
request (`max_new_tokens` and `min_new_tokens` 1), in the same process, on the same
devices, with the same energy backends and idle baseline; its sampler is forked before
the model loads, as the main window's is. The engine runs it under a one-token copy of
the experiment's config (`one_output_token`): every engine reads its generation budget
from its config at each run. `phase_subtraction` compares the two windows' headline
energy (`domain/phase_split.py`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.baseline import Baselines
from llenergymeasure.core.energy_accounting import account_energy
from llenergymeasure.core.energy_backends import EnergySources
from llenergymeasure.core.engines.base import Engine, EngineOutput
from llenergymeasure.core.measurement_warnings import SHORT_MEASUREMENT_S
from llenergymeasure.core.window import WindowResult
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.domain.metrics import MeasurementWarning
from llenergymeasure.domain.phase_split import PhaseSubtraction


def wants_prefill_pass(config: ExperimentConfig) -> bool:
    """True where the config asks for the subtraction method's second window."""
    return config.measurement.phase_split == "subtraction"


def prefill_config(config: ExperimentConfig) -> ExperimentConfig:
    """The experiment with one output token per request: optimum-benchmark's prefill pass."""
    generation = config.generation.model_copy(update={"max_new_tokens": 1, "min_new_tokens": 1})
    return config.model_copy(update={"generation": generation})


@contextmanager
def one_output_token(engine: Engine) -> Iterator[None]:
    """The engine runs under `prefill_config` of its config inside, its own config after."""
    full = engine.config
    engine.config = prefill_config(full)
    try:
        yield
    finally:
        engine.config = full


def phase_subtraction(
    result: RawProcessResult,
    prefill: WindowResult[EngineOutput],
    baselines: Baselines,
    sources: EnergySources,
    config: ExperimentConfig,
) -> PhaseSubtraction:
    """The record of this process: its main window (`result`) less its prefill pass.

    The prefill window is accounted as the main one (same baselines, components and
    headline boundary), and what makes its figure weaker is a warning of the record.
    """
    requests = prefill.value.requests
    account = account_energy(
        prefill.readings,
        baselines,
        window_s=prefill.window_s,
        window_start_unix_s=prefill.start_unix_s,
        output_tokens=sum(r.output_tokens for r in requests),
        gpus_expected=result.runs_on_gpu,
        gpu_problem=sources.gpu_problem,
        config=config.measurement,
    )
    full = result.energy_breakdown
    warnings = prefill_pass_warnings(result, prefill, account.warnings, config)
    part = account.breakdown
    boundary = full.boundary if full is not None else None
    if part is not None and part.boundary != boundary:
        # Joules of two boundaries cannot be subtracted: no split rather than a wrong one.
        warnings.append(
            f"the prefill window's energy covers boundary {part.boundary}, the main window's "
            f"{boundary}: no split"
        )
        part = None
    return PhaseSubtraction.build(
        boundary=boundary,
        full_j=full.raw_j if full is not None else None,
        prefill_j=part.raw_j if part is not None else None,
        full_above_idle_j=full.adjusted_j if full is not None else None,
        prefill_above_idle_j=part.adjusted_j if part is not None else None,
        full_window_s=result.energy_window_s or result.inference_duration_s,
        prefill_window_s=prefill.window_s,
        num_requests=len(requests),
        prefill_tokens=sum(r.input_tokens for r in requests),
        prefill_output_tokens=sum(r.output_tokens for r in requests),
        full_output_tokens=result.output_tokens,
        warnings=warnings,
    )


def prefill_pass_warnings(
    result: RawProcessResult,
    prefill: WindowResult[EngineOutput],
    account_warnings: list[MeasurementWarning],
    config: ExperimentConfig,
) -> list[str]:
    """What makes the prefill pass's figure weaker than the main window's."""
    interval_ms = config.measurement.energy.sample_interval_ms
    window_s = prefill.window_s
    notes = []
    if window_s < SHORT_MEASUREMENT_S:
        below = (
            f"shorter than one sampler interval ({interval_ms} ms)"
            if window_s * 1000.0 < interval_ms
            else f"under the {SHORT_MEASUREMENT_S:g} s a window needs to be trusted"
        )
        notes.append(
            f"prefill window of {window_s:.3f} s is {below}: counter resolution and "
            "start-up dominate its energy (raise prompts.num_prompts)"
        )
    requests = prefill.value.requests
    off = [r for r in requests if r.output_tokens != 1]
    if off:
        notes.append(f"{len(off)} of {len(requests)} prefill requests generated other than 1 token")
    if len(requests) != result.num_requests:
        notes.append(
            f"the prefill pass ran {len(requests)} requests, the main window {result.num_requests}"
        )
    main = {w.message for w in result.warnings}
    notes += [f"prefill window: {w.message}" for w in account_warnings if w.message not in main]
    notes += [
        f"prefill window: sampler {source} failed: {error}"
        for source, error in prefill.sampler_errors.items()
    ]
    return notes
