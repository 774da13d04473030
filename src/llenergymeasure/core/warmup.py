"""Warmup until the latency of a repeated batch is stable.

Convergence: the coefficient of variation (sample stdev / mean) of the last
`window_size` latencies falls under `cv_threshold`, after at least `min_prompts`
iterations; at `max_prompts` warmup stops with `converged=False`. Each iteration runs
the same batch, so the latency varies only with the state of the machine (caches,
allocator, clocks). Nothing done here is counted in tokens, FLOPs or energy.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from llenergymeasure.config.measurement import WarmupConfig
from llenergymeasure.domain.metrics import WarmupResult
from llenergymeasure.log import logger

ProgressFn = Callable[[str, int, int], None]


def coefficient_of_variation(values: list[float]) -> float | None:
    """Sample stdev over mean; None for fewer than two values or a zero mean."""
    if len(values) < 2:
        return None
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else None


def warmup_until_converged(
    run_once: Callable[[], float],
    config: WarmupConfig,
    progress: ProgressFn | None = None,
) -> WarmupResult:
    """Call `run_once` (returns a latency in ms) until the latencies are stable.

    The thermal floor that follows (`core/thermal_floor.py`) fills in its own fields.

    Args:
        run_once: one warmup iteration; returns its latency in milliseconds.
        config: thresholds and bounds.
        progress: called as ``progress("warmup", iteration, max_prompts)``.

    """
    latencies: list[float] = []
    cv = None
    converged = False
    if config.enabled:
        for i in range(config.max_prompts):
            latencies.append(run_once())
            if progress is not None:
                progress("warmup", i + 1, config.max_prompts)
            if len(latencies) < max(config.min_prompts, config.window_size):
                continue
            cv = coefficient_of_variation(latencies[-config.window_size :])
            if cv is not None and cv < config.cv_threshold:
                converged = True
                break
        if progress is not None:
            progress("warmup", len(latencies), len(latencies))
        if not converged:
            logger.warning(
                f"warmup did not converge in {config.max_prompts} iterations "
                f"(last CV {cv if cv is not None else float('nan'):.3f} >= {config.cv_threshold})"
            )
    return WarmupResult(
        enabled=config.enabled,
        converged=converged,
        final_cv=cv,
        iterations=len(latencies),
        latencies_ms=latencies,
        cv_threshold=config.cv_threshold,
        thermal_floor_s=0.0,
    )


def create_warmup_inference_fn(
    model: Any,
    inputs: dict[str, Any],
    generate_kwargs: dict[str, Any],
    synchronize: Callable[[], None],
) -> Callable[[], float]:
    """A function that runs one `generate` on `inputs` and returns its latency in ms."""

    def run_once() -> float:
        synchronize()
        start = time.perf_counter()
        model.generate(**inputs, **generate_kwargs)
        synchronize()
        return (time.perf_counter() - start) * 1000.0

    return run_once
