"""Per-request latency from per-step timestamps of a batched `generate`.

All times come from `time.monotonic()`. For a request that emitted `n` tokens in a
batch started at `t0` with step end times `s[0..]`: TTFT = s[0] - t0, end-to-end =
s[n-1] - t0, ITL = the gaps s[k] - s[k-1] for k < n. A finished request stops
contributing gaps, so percentiles are over requests (and their own tokens), not
batches.
"""

from __future__ import annotations

from llenergymeasure.domain.metrics import LatencySamples


def request_latencies_ms(
    batch_start_s: float, step_times_s: list[float], output_tokens: list[int]
) -> LatencySamples:
    """TTFT, ITL and end-to-end samples of every request of one batch."""
    ttft, itl, e2e = [], [], []
    for n in output_tokens:
        if n <= 0 or n > len(step_times_s):
            continue
        steps = step_times_s[:n]
        ttft.append((steps[0] - batch_start_s) * 1000.0)
        e2e.append((steps[-1] - batch_start_s) * 1000.0)
        itl.extend((b - a) * 1000.0 for a, b in zip(steps, steps[1:], strict=False))
    return LatencySamples(ttft_ms=ttft, itl_ms=itl, e2e_ms=e2e)
