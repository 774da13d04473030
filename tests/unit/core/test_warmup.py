from __future__ import annotations

import itertools

from llenergymeasure.config.measurement import WarmupConfig
from llenergymeasure.core.warmup import coefficient_of_variation, warmup_until_converged


def test_converges_once_the_window_is_stable() -> None:
    latencies = iter([50.0, 30.0, 20.0, 10.0, 10.1, 10.0, 9.9, 10.0])
    config = WarmupConfig(min_prompts=3, max_prompts=20, window_size=3, cv_threshold=0.05)
    result = warmup_until_converged(lambda: next(latencies), config)
    assert result.converged
    assert result.iterations == 6  # window [10.0, 10.1, 10.0] is the first under 5 %
    assert result.final_cv < 0.05
    assert result.latencies_ms == [50.0, 30.0, 20.0, 10.0, 10.1, 10.0]


def test_never_converging_stops_at_max_prompts() -> None:
    latencies = itertools.cycle([10.0, 20.0])
    config = WarmupConfig(min_prompts=2, max_prompts=7, window_size=3, cv_threshold=0.05)
    result = warmup_until_converged(lambda: next(latencies), config)
    assert not result.converged
    assert result.iterations == 7
    assert result.final_cv > 0.05


def test_min_prompts_is_respected() -> None:
    config = WarmupConfig(min_prompts=5, max_prompts=9, window_size=2, cv_threshold=0.5)
    result = warmup_until_converged(lambda: 10.0, config)
    assert result.converged and result.iterations == 5


def test_disabled_warmup_runs_nothing() -> None:
    calls = []
    result = warmup_until_converged(lambda: calls.append(1) or 1.0, WarmupConfig(enabled=False))
    assert calls == [] and result.iterations == 0 and not result.enabled


def test_cv() -> None:
    assert coefficient_of_variation([1.0]) is None
    assert coefficient_of_variation([2.0, 2.0]) == 0.0


def test_no_convergence_before_a_full_window_of_latencies() -> None:
    # two equal latencies already have a CV of 0; the window asks for five
    config = WarmupConfig(min_prompts=2, max_prompts=20, window_size=5, cv_threshold=0.5)
    result = warmup_until_converged(lambda: 10.0, config)
    assert result.converged and result.iterations == 5
