from __future__ import annotations

import random

import numpy as np
import pytest

from llenergymeasure.core.latency import request_latencies_ms
from llenergymeasure.domain.metrics import LatencySamples, LatencyStats, percentile


def test_per_request_latencies_from_step_times() -> None:
    # batch starts at 10.0 s; steps end at +0.1, +0.15, +0.2, +0.3 s
    steps = [10.1, 10.15, 10.2, 10.3]
    samples = request_latencies_ms(10.0, steps, [4, 2])
    assert samples.ttft_ms == pytest.approx([100.0, 100.0])
    assert samples.e2e_ms == pytest.approx([300.0, 150.0])
    # request 0 contributes 3 gaps, request 1 (finished after 2 tokens) only 1
    assert samples.itl_ms == pytest.approx([50.0, 50.0, 100.0, 50.0])


def test_a_request_done_at_its_first_token_returns_with_its_batch() -> None:
    steps = [10.1, 10.15, 10.2, 10.3]
    samples = request_latencies_ms(10.0, steps, [4, 1], return_time_s=10.32)
    assert samples.e2e_ms == pytest.approx([300.0, 100.0])
    assert samples.batch_return_ms == pytest.approx([320.0, 320.0])
    assert samples.e2e_ms[1] < samples.batch_return_ms[1]
    stats = LatencyStats.from_samples(samples)
    assert stats.batch_return_p50_ms == pytest.approx(320.0)
    assert stats.e2e_p50_ms == pytest.approx(200.0)


def test_batch_return_is_pooled_over_processes() -> None:
    a = LatencySamples(e2e_ms=[1.0, 1.0, 1.0], batch_return_ms=[2.0, 2.0, 2.0])
    b = LatencySamples(e2e_ms=[9.0], batch_return_ms=[10.0])
    stats = LatencyStats.pooled([a, b])
    assert stats.batch_return_p50_ms == pytest.approx(2.0)
    assert stats.batch_return_mean_ms == pytest.approx(4.0)
    assert LatencySamples.concat([a, b]).batch_return_ms == [2.0, 2.0, 2.0, 10.0]


def test_percentile_matches_numpy() -> None:
    rng = random.Random(3)
    values = [rng.uniform(0, 100) for _ in range(101)]
    for q in (0, 5, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(np.percentile(values, q))
    assert percentile([], 50) is None


def test_stats_pool_samples_rather_than_average_percentiles() -> None:
    a = LatencySamples(ttft_ms=[1.0, 1.0, 1.0], e2e_ms=[1.0, 1.0, 1.0])
    b = LatencySamples(ttft_ms=[100.0], e2e_ms=[100.0])
    stats = LatencyStats.from_samples(LatencySamples.concat([a, b]))
    assert stats.ttft_p50_ms == 1.0  # averaging the two p50s would give 50.5
    assert stats.num_requests == 4
    assert LatencyStats.from_samples(LatencySamples()).ttft_p50_ms is None


def test_pooled_percentiles_match_numpy_on_the_concatenation() -> None:
    rng = random.Random(7)
    parts = [
        LatencySamples(
            ttft_ms=[rng.uniform(0, 50) for _ in range(n)],
            itl_ms=[rng.expovariate(0.1) for _ in range(10 * n)],
            e2e_ms=[rng.uniform(50, 500) for _ in range(n)],
        )
        for n in (1, 7, 30, 0, 101)
    ]
    stats = LatencyStats.pooled(parts)
    pooled = LatencySamples.concat(parts)
    for kind in ("ttft", "itl", "e2e"):
        values = getattr(pooled, f"{kind}_ms")
        assert getattr(stats, f"{kind}_p50_ms") == pytest.approx(np.percentile(values, 50))
        assert getattr(stats, f"{kind}_p95_ms") == pytest.approx(np.percentile(values, 95))
        assert getattr(stats, f"{kind}_mean_ms") == pytest.approx(np.mean(values))
    assert stats.num_requests == 139
    single = LatencyStats.pooled([LatencySamples(ttft_ms=[3.0], e2e_ms=[4.0])])
    assert single.ttft_p95_ms == 3.0 and single.itl_p50_ms is None
