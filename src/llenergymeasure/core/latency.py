"""Per-request latency from per-step timestamps of a batched `generate`.

All times come from `time.monotonic()`. For a request that emitted `n` tokens in a
batch started at `t0` with step end times `s[0..]`: TTFT = s[0] - t0, end-to-end =
s[n-1] - t0 (its last token), ITL = the gaps s[k] - s[k-1] for k < n, batch return =
r - t0 with `r` the time `generate` returned (after a device synchronize): what a caller
of the batch waits, the same for every request of the batch. A finished request stops
contributing gaps, so percentiles are over requests (and their own tokens), not
batches.
"""

from __future__ import annotations

from llenergymeasure.domain.metrics import LatencySamples


def request_latencies_ms(
    batch_start_s: float,
    step_times_s: list[float],
    output_tokens: list[int],
    return_time_s: float | None = None,
) -> LatencySamples:
    """TTFT, ITL, end-to-end (last token) and batch return samples of one batch.

    Args:
        batch_start_s: monotonic time the batch was started.
        step_times_s: monotonic end time of each generation step.
        output_tokens: tokens each request emitted.
        return_time_s: monotonic time `generate` returned; None records no batch return.

    Returns:
        The samples, in milliseconds, of every request that emitted a timed token.

    """
    ttft, itl, e2e, batch_return = [], [], [], []
    for n in output_tokens:
        if n <= 0 or n > len(step_times_s):
            continue
        steps = step_times_s[:n]
        ttft.append((steps[0] - batch_start_s) * 1000.0)
        e2e.append((steps[-1] - batch_start_s) * 1000.0)
        itl.extend((b - a) * 1000.0 for a, b in zip(steps, steps[1:], strict=False))
        if return_time_s is not None:
            batch_return.append((return_time_s - batch_start_s) * 1000.0)
    return LatencySamples(ttft_ms=ttft, itl_ms=itl, e2e_ms=e2e, batch_return_ms=batch_return)
