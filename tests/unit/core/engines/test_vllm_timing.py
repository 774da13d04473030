"""The vLLM engine's timing on our clock and its cross-check against vLLM's own.

No vLLM here: these are the pure parts (`vllm_timing.py`, the engine's arguments and
GPU ownership); the engine itself runs in tests/integration/test_vllm_engine.py.
"""

from __future__ import annotations

import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.engines.vllm import (
    engine_arguments,
    tensor_parallel_ordinals,
    visible_devices,
)
from llenergymeasure.core.engines.vllm_timing import (
    CROSS_CHECK_ABS_MS,
    EngineRequestStats,
    RequestTrace,
    cross_check_warning,
    engine_latencies_ms,
    measured_latencies_ms,
)


def trace(submitted_s: float, times_s: list[float], n: int, stats=None) -> RequestTrace:
    return RequestTrace(submitted_s, times_s, n, stats)


def test_each_request_is_timed_from_its_own_submission() -> None:
    traces = [
        trace(10.0, [10.5, 10.6, 10.8], 3),
        trace(10.1, [10.6, 10.8], 2),
        trace(10.2, [], 0),  # no token: nothing to time
    ]
    samples = measured_latencies_ms(traces, return_time_s=11.0)
    assert samples.ttft_ms == pytest.approx([500.0, 500.0])
    assert samples.e2e_ms == pytest.approx([800.0, 700.0])
    assert samples.itl_ms == pytest.approx([100.0, 200.0, 200.0])
    assert samples.batch_return_ms == pytest.approx([1000.0, 900.0])


def test_tokens_after_the_counted_ones_are_not_timed() -> None:
    # Two tokens came back, one counts (the EOS rule cut the rest): e2e ends at the first.
    samples = measured_latencies_ms([trace(0.0, [0.25, 0.5], 1)], return_time_s=1.0)
    assert samples.e2e_ms == pytest.approx([250.0]) and samples.itl_ms == []


def test_engine_timing_is_ttft_plus_its_decode_time() -> None:
    stats = EngineRequestStats(
        first_token_latency_s=0.4, first_token_ts_s=100.0, last_token_ts_s=100.3
    )
    theirs = engine_latencies_ms([trace(0.0, [0.41, 0.71], 2, stats), trace(0.0, [0.5], 1)])
    assert theirs is not None
    assert theirs.ttft_ms == pytest.approx([400.0]) and theirs.e2e_ms == pytest.approx([700.0])
    assert theirs.itl_ms == [] and theirs.batch_return_ms == []
    assert engine_latencies_ms([trace(0.0, [0.5], 1)]) is None


def test_agreeing_timings_give_no_warning_and_disagreeing_ones_do() -> None:
    stats = EngineRequestStats(0.4, 100.0, 100.3)
    close = [trace(0.0, [0.401, 0.702], 2, stats)]
    ours = measured_latencies_ms(close, 1.0)
    assert cross_check_warning(ours, engine_latencies_ms(close)) is None
    late_s = 0.4 + 3 * CROSS_CHECK_ABS_MS / 1000.0  # beyond both 20 ms and 10% of 400 ms
    far = [trace(0.0, [late_s, 0.702], 2, stats)]
    warning = cross_check_warning(measured_latencies_ms(far, 1.0), engine_latencies_ms(far))
    assert warning is not None and warning.code == "engine_latency_disagrees"
    assert "TTFT of 1" in warning.message and "e2e of" not in warning.message
    assert cross_check_warning(ours, None) is None


def test_tensor_parallel_processes_own_disjoint_gpus() -> None:
    owned = [tensor_parallel_ordinals(i, 2) for i in range(3)]
    assert owned == [[0, 1], [2, 3], [4, 5]]
    assert visible_devices([2, 3], "7,5,3,1") == "3,1"
    assert visible_devices([0, 1], None) == "0,1"


def test_engine_arguments_carry_the_section() -> None:
    config = validate_config(
        {
            "name": "v",
            "model": {"name": "builtin:smollm2-135m"},
            "engine": "vllm",
            "vllm": {"kv_cache_memory_mb": 256, "max_num_seqs": 8, "tensor_parallel_size": 2},
        },
        "test",
    )
    arguments = engine_arguments(config, "/models/m", "float32")
    assert arguments["kv_cache_memory_bytes"] == 256 * 2**20
    assert arguments["max_num_seqs"] == 8 and arguments["tensor_parallel_size"] == 2
    assert arguments["disable_log_stats"] is False  # keeps vLLM's own timing
    assert arguments["enable_prefix_caching"] is False
    assert "max_model_len" not in arguments  # unset: vLLM takes the model's context
