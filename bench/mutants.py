"""The realistic bugs `bench/mutation.py` injects, each with the tests that must catch it.

A mutant is one or more exact edits of the source (the snippet must occur exactly once in
its file) and the pytest selection that covers it. Add one whenever a bug is found that
the tests missed, together with the test that now catches it. `survives` names the
reason when a mutant is knowingly left alive.
"""

from __future__ import annotations

from dataclasses import dataclass

SRC = "src/llenergymeasure/"


@dataclass(frozen=True)
class Edit:
    """Replace `old` (found exactly once in `path`) by `new`."""

    path: str
    old: str
    new: str


@dataclass(frozen=True)
class Mutant:
    """A bug, how to inject it, and the tests that should fail on it."""

    name: str
    bug: str
    edits: tuple[Edit, ...]
    tests: tuple[str, ...]
    survives: str = ""


def mutant(name: str, bug: str, path: str, old: str, new: str, *tests: str) -> Mutant:
    """A mutant of one edit in `src/llenergymeasure/<path>`."""
    return Mutant(name, bug, (Edit(SRC + path, old, new),), tests)


FILEIO = "tests/unit/test_fileio.py"
FLOPS = "tests/unit/core/test_flops.py"
EXPORTS = "tests/unit/results/test_csv_columns.py"
TIMESERIES = "tests/unit/core/test_timeseries_parquet.py"
AGGREGATION = (
    "tests/unit/results/test_aggregation.py",
    "tests/unit/results/test_aggregation_figures.py",
)
TOTALS = "tests/unit/core/test_energy_totals.py"
LIFECYCLE = "tests/unit/core/test_measured_lifecycle.py"
WARMUP = "tests/unit/core/test_warmup.py"
EOS = "tests/unit/core/test_eos_token_counts.py"
COMPARE = "tests/unit/results/test_compare.py"
SHARDING = "tests/unit/orchestration/test_prompt_sharding.py"
LATENCY = "tests/unit/core/test_latency.py"
THROTTLE = ("tests/unit/core/test_nvml_sampler.py", "tests/unit/core/test_throttle.py")
NVML_ENERGY = "tests/unit/core/test_nvml_energy.py"
PROMPTS = "tests/unit/prompts/test_sources.py"
SAMPLER_UNIT = "tests/unit/core/test_sampler.py"
LOAD = "tests/unit/core/load/"
REPORT_HTML = "tests/unit/results/test_report_html.py"
BOUNDARIES = (
    "tests/unit/domain/test_energy_boundaries.py",
    "tests/unit/domain/test_energy_boundary_figures.py",
    "tests/unit/core/test_baseline.py",
)
EXPORTS_ALL = ("tests/unit/results/test_exporters.py", "tests/unit/results/test_csv_columns.py")
SAMPLER = ("tests/unit/core/test_sampler.py", "tests/unit/core/test_sampler_clock.py")
NVML_SAMPLES = ("tests/unit/core/test_nvml_sampler.py", "tests/unit/core/test_nvml_sample_index.py")
BASELINE = ("tests/unit/core/test_baseline.py", "tests/unit/core/test_baseline_figures.py")
BASELINE_THEN_LOAD = """        baselines = measure_idle_baselines(sources, config, ctx)
        gpu_source = sources.gpu_sample_source()
        measurement_window = open_window(engine, sources, gpu_source, config)
        prefill_window = open_prefill_window(engine, sources, gpu_source, config)
        windows += [measurement_window, prefill_window]
        loaded = load_model(engine, ctx)
"""
LOAD_THEN_BASELINE = """        gpu_source = sources.gpu_sample_source()
        measurement_window = open_window(engine, sources, gpu_source, config)
        prefill_window = open_prefill_window(engine, sources, gpu_source, config)
        windows += [measurement_window, prefill_window]
        loaded = load_model(engine, ctx)
        baselines = measure_idle_baselines(sources, config, ctx)
"""
LATENCY_FIELDS = (
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p95_ms",
    "itl_mean_ms",
    "itl_p50_ms",
    "itl_p95_ms",
    "e2e_mean_ms",
    "e2e_p50_ms",
    "e2e_p95_ms",
)
AVERAGED_LATENCY = (
    "LatencyStats(**{k: statistics.fmean(getattr(LatencyStats.from_samples(r.latency_samples), k)"
    f" for r in counted) for k in {LATENCY_FIELDS!r}}})"
)

MUTANTS: list[Mutant] = [
    mutant(
        "fileio-no-fsync",
        "the temporary file is not fsynced before os.replace",
        "fileio.py",
        "        _fsync_file(tmp)\n        os.replace(tmp, path)",
        "        os.replace(tmp, path)",
        FILEIO,
    ),
    mutant(
        "fileio-direct-write",
        "atomic_write_bytes writes the target in place (errors still reported as StorageError)",
        "fileio.py",
        '    with atomic_target(path) as tmp:\n        with open(tmp, "wb") as fh:\n'
        "            fh.write(data)\n",
        "    try:\n        path.parent.mkdir(parents=True, exist_ok=True)\n"
        "        path.write_bytes(data)\n    except OSError as exc:\n"
        '        raise StorageError(f"{describe_os_error(exc)} while writing {path}; '
        'nothing was replaced") from exc\n',
        FILEIO,
    ),
    mutant(
        "csv-ttft-p95-from-p50",
        "latency_ttft_p95_ms exported from the p50",
        "results/csv_columns.py",
        '"latency_ttft_p95_ms": "latency.ttft_p95_ms"',
        '"latency_ttft_p95_ms": "latency.ttft_p50_ms"',
        EXPORTS,
    ),
    mutant(
        "csv-baseline-from-spread",
        "energy_baseline_w exported from the baseline's standard deviation",
        "results/csv_columns.py",
        '"energy_baseline_w": "energy_breakdown.baseline_power_w"',
        '"energy_baseline_w": "energy_breakdown.baseline_std_w"',
        EXPORTS,
    ),
    mutant(
        "csv-e2e-mean-from-p95",
        "latency_e2e_mean_ms exported from the p95",
        "results/csv_columns.py",
        '"latency_e2e_mean_ms": "latency.e2e_mean_ms"',
        '"latency_e2e_mean_ms": "latency.e2e_p95_ms"',
        EXPORTS,
    ),
    mutant(
        "csv-adjusted-from-raw",
        "energy_adjusted_j exported from the raw energy",
        "results/csv_columns.py",
        '"energy_adjusted_j": "energy_breakdown.adjusted_j"',
        '"energy_adjusted_j": "energy_breakdown.raw_j"',
        EXPORTS,
    ),
    mutant(
        "csv-raw-duration-from-start",
        "the per-process inference_duration_s exported from the window end",
        "results/csv_columns.py",
        '"inference_duration_s": "inference_duration_s"',
        '"inference_duration_s": "inference_end_unix_s"',
        EXPORTS,
    ),
    mutant(
        "timeseries-bucket-not-divided",
        "1 Hz bucket timestamps not divided by resample_hz",
        "core/timeseries.py",
        '"timestamp_s": bucket / resample_hz',
        '"timestamp_s": float(bucket)',
        TIMESERIES,
    ),
    mutant(
        "aggregate-wall-longest-process",
        "the wall window is the longest process's duration, not first start to last end",
        "results/aggregation.py",
        "    wall_s = end - start\n",
        "    wall_s = max(r.inference_duration_s for r in results)\n",
        *AGGREGATION,
    ),
    mutant(
        "aggregate-latency-averaged",
        "latency percentiles averaged over processes instead of pooled",
        "results/aggregation.py",
        "latency=LatencyStats.pooled([r.latency_samples for r in counted if r.latency_samples]),",
        f"latency={AVERAGED_LATENCY},",
        *AGGREGATION,
    ),
    mutant(
        "aggregate-adjusted-one-process",
        "energy above idle of a component taken from one process only",
        "domain/energy.py",
        "        above, clipped = _above_idle(energy_j, baseline_j)\n        stds = ",
        "        above, clipped = first.above_idle_j, first.above_idle_clipped\n        stds = ",
        *AGGREGATION,
    ),
    mutant(
        "aggregate-none-as-zero",
        "an unread energy (None) counted as 0 J in the sums over processes and components",
        "domain/energy.py",
        "    if not values or any(v is None for v in values):\n        return None\n"
        "    return float(sum(values))",
        "    if not values:\n        return None\n    return float(sum(v or 0.0 for v in values))",
        *AGGREGATION,
    ),
    mutant(
        "aggregate-process-warnings-dropped",
        "the processes' measurement warnings (energy_incomplete) left out of the aggregate",
        "results/aggregation.py",
        "        warnings=merge_warnings(results),",
        "        warnings=merge_warnings(results[:0]),",
        *AGGREGATION,
    ),
    mutant(
        "measurement-total-skips-none",
        "a device's unread energy skipped in a measurement's total over several devices",
        "domain/metrics.py",
        "        values = [d.energy_j for d in self.devices]\n",
        "        values = [d.energy_j for d in self.devices if d.energy_j is not None]\n",
        TOTALS,
    ),
    mutant(
        "verify-other-ranks-index-accepted",
        "a result file holding another rank's process_index accepted",
        "results/verification.py",
        "if result.process_index != index or marker.process_index != index:",
        "if marker.process_index != index:",
        *AGGREGATION,
    ),
    mutant(
        "verify-mixed-scopes-accepted",
        "a reading of the wrong scope (a GPU counted as machine-level) accepted",
        "results/verification.py",
        "for d in r.devices if d.scope != _SCOPES[d.kind]}",
        'for d in r.devices if d.scope not in ("device", "machine")}',
        *AGGREGATION,
    ),
    mutant(
        "aggregate-throttle-shortest",
        "the aggregated throttle duration is the shortest, not the longest",
        "results/aggregation.py",
        "        return max(values) if values else None",
        "        return min(values) if values else None",
        *AGGREGATION,
    ),
    mutant(
        "aggregate-process-energy-adjusted",
        "per-process energy_j filled from the adjusted energy",
        "results/aggregation.py",
        "energy_j=r.energy_breakdown.raw_j if r.energy_breakdown else None,",
        "energy_j=r.energy_breakdown.adjusted_j if r.energy_breakdown else None,",
        *AGGREGATION,
    ),
    mutant(
        "run-baseline-after-load",
        "the baseline measured after the model is loaded",
        "core/lifecycle.py",
        BASELINE_THEN_LOAD,
        LOAD_THEN_BASELINE,
        LIFECYCLE,
    ),
    mutant(
        "run-tokens-per-second-all-tokens",
        "tokens/s counts prompt plus output tokens",
        "core/assembly.py",
        "            output_tokens / window.busy_s if output_tokens",
        "            sum(r.input_tokens + r.output_tokens for r in requests) / window.busy_s"
        " if output_tokens",
        LIFECYCLE,
    ),
    mutant(
        "run-joules-per-token-all-tokens",
        "per-process J/token divides by prompt plus output tokens",
        "core/assembly.py",
        "            breakdown.raw_j / output_tokens\n",
        "            breakdown.raw_j / (output_tokens + sum(r.input_tokens for r in requests))\n",
        LIFECYCLE,
    ),
    Mutant(
        "latency-from-window-start",
        "TTFT and end-to-end latency timed from the window's start, not each batch's",
        (
            Edit(
                SRC + "core/engines/transformers.py",
                "from collections.abc import Callable\n",
                "import time\nfrom collections.abc import Callable\n",
            ),
            Edit(
                SRC + "core/engines/transformers.py",
                "        for batch in workload.items:\n"
                "            outputs.append(generate_batch(self.model, batch, gen_config, "
                "self.synchronize))",
                "        window_start_s = time.monotonic()\n"
                "        for batch in workload.items:\n"
                "            outputs.append(generate_batch(self.model, batch, gen_config, "
                "self.synchronize, window_start_s))",
            ),
            Edit(
                SRC + "core/engines/generation.py",
                "    synchronize: Callable[[], None],\n) -> BatchOutput:",
                "    synchronize: Callable[[], None],\n"
                "    window_start_s: float,\n) -> BatchOutput:",
            ),
            Edit(
                SRC + "core/engines/generation.py",
                "request_latencies_ms(start_s, timer.times_s,",
                "request_latencies_ms(window_start_s, timer.times_s,",
            ),
        ),
        (LIFECYCLE,),
    ),
    mutant(
        "warmup-before-full-window",
        "warmup allowed to converge before a full window of latencies",
        "core/warmup.py",
        "if len(latencies) < max(config.min_prompts, config.window_size):",
        "if len(latencies) < config.min_prompts:",
        WARMUP,
    ),
    mutant(
        "sampler-wall-clock",
        "sampler samples stamped from the wall clock instead of the sampler's clock",
        "core/power_thermal.py",
        "        t_s = self._clock()\n",
        "        t_s = time.time()\n",
        *SAMPLER,
    ),
    mutant(
        "nvml-samples-cuda-ordinal",
        "GPU samples tagged with the CUDA ordinal instead of the NVML index",
        "core/energy_backends/nvml.py",
        "            device_index=device.nvml_index,",
        "            device_index=device.cuda_ordinal,",
        *NVML_SAMPLES,
    ),
    mutant(
        "baseline-cache-past-ttl",
        "a cached baseline used past its TTL",
        "core/baseline.py",
        "if parsed is None or not 0 <= now - parsed[1].measured_at_unix_s <= ttl_s:",
        "if parsed is None or not 0 <= now - parsed[1].measured_at_unix_s:",
        *BASELINE,
    ),
    mutant(
        "baseline-spread-summed",
        "the baseline spread of several GPUs summed instead of root-sum-square",
        "core/baseline.py",
        "std_w=math.sqrt(sum(s * s for s in stds)) if",
        "std_w=sum(stds) if",
        *BASELINE,
    ),
    mutant(
        "idle-power-joules",
        "an energy backend's idle power in joules per sub-window instead of watts",
        "core/energy_backends/base.py",
        "powers_w[kind].append(sum(energies) / measured.duration_s)",
        "powers_w[kind].append(sum(energies))",
        *BASELINE,
    ),
    mutant(
        "baseline-over-busy-time",
        "the baseline subtracted over the process's busy time instead of the energy window",
        "core/window_summary.py",
        "        window_s=window.window_s,\n        window_start_unix_s=",
        "        window_s=window.busy_s,\n        window_start_unix_s=",
        LIFECYCLE,
    ),
    mutant(
        "eos-not-counted",
        "a request's EOS token left out of its output tokens",
        "core/engines/generation.py",
        "            return k + 1, True\n",
        "            return k, True\n",
        EOS,
    ),
    mutant(
        "padding-counted",
        "the padding generated after a request's EOS counted as its output tokens",
        "core/engines/generation.py",
        "counts = [count_generated(row, stop_ids) for row in generated]",
        "counts = [(len(row), False) for row in generated]",
        EOS,
    ),
    mutant(
        "input-padding-counted",
        "a prompt's input tokens counted with the batch's left padding",
        "core/engines/generation.py",
        'counts = [int(n) for n in enc["attention_mask"].sum(dim=1).tolist()]',
        'counts = [enc["input_ids"].shape[1]] * len(group)',
        EOS,
    ),
    mutant(
        "bootstrap-unseeded",
        "the bootstrap generator not seeded: the same data give a different table each time",
        "results/compare.py",
        "    rng = np.random.default_rng(seed)\n",
        "    rng = np.random.default_rng()\n",
        COMPARE,
    ),
    mutant(
        "bootstrap-seed-off-by-one",
        "the bootstrap seeded with another seed than the one asked for",
        "results/compare.py",
        "    rng = np.random.default_rng(seed)\n",
        "    rng = np.random.default_rng(seed + 1)\n",
        COMPARE,
    ),
    mutant(
        "aggregate-machine-energy-per-process",
        "machine-level energy (RAPL, estimate) summed over the processes of a host",
        "results/energy_combination.py",
        '            if c.scope == "machine":\n',
        '            if c.scope == "host":\n',
        *AGGREGATION,
    ),
    mutant(
        "verify-hash-ignored",
        "a result that no longer matches its completion marker's hash aggregated",
        "results/verification.py",
        "    if hashlib.sha256(data).hexdigest() != marker.result_sha256:",
        "    if not data:",
        *AGGREGATION,
        "tests/integration/test_aggregate_faults.py",
    ),
    mutant(
        "aggregate-throttle-and",
        "throttle flags AND-ed over processes instead of OR-ed",
        "results/aggregation.py",
        "        return any(values) if values else None",
        "        return all(values) if values else None",
        *AGGREGATION,
    ),
    mutant(
        "adjusted-may-be-negative",
        "energy above idle not clamped at 0 when the baseline exceeds the window's energy",
        "domain/energy.py",
        "    return max(0.0, energy_j - baseline_j), energy_j < baseline_j",
        "    return energy_j - baseline_j, energy_j < baseline_j",
        *BASELINE,
    ),
    mutant(
        "latency-p95-is-p90",
        "the 95th percentile computed as the 90th",
        "domain/metrics.py",
        "p50, p95 = _linear_quantiles(pooled, (0.50, 0.95))",
        "p50, p95 = _linear_quantiles(pooled, (0.50, 0.90))",
        LATENCY,
    ),
    mutant(
        "timeseries-raw-not-offset",
        "raw (resample_hz=0) sidecar times not taken from the window's start",
        "core/timeseries.py",
        '            "timestamp_s": s.t_s - start_s,',
        '            "timestamp_s": s.t_s,',
        TIMESERIES,
    ),
    mutant(
        "shards-overlap",
        "prompt shards overlap: process k takes every prompt from k on",
        "orchestration/worker.py",
        "    return prompts[index::count]",
        "    return prompts[index::count] if count == 1 else prompts[index:]",
        SHARDING,
    ),
    mutant(
        "throttle-ticks-per-device",
        "a throttled tick counted once per device, so two GPUs double the throttle duration",
        "core/throttle.py",
        "return len({s.t_s for s in with_bits if s.throttle_reasons & mask}) * interval_s",
        "return len([s.t_s for s in with_bits if s.throttle_reasons & mask]) * interval_s",
        *THROTTLE,
    ),
    mutant(
        "timeseries-mean-none-as-zero",
        "a sidecar bucket's mean counting unread (null) readings as 0",
        "core/timeseries.py",
        "    present = [v for v in values if v is not None]\n",
        "    present = [v or 0.0 for v in values]\n",
        TIMESERIES,
    ),
    mutant(
        "compare-ratio-to-worst",
        "the energy ratio taken to the worst row instead of the best",
        "results/compare.py",
        "    best = min(present)\n",
        "    best = max(present)\n",
        COMPARE,
    ),
    mutant(
        "machine-reading-shortest",
        "the machine-level reading of a host taken from the shortest window",
        "results/energy_combination.py",
        "chosen, reading = max(\n        group, key=lambda rc: (rc[1].energy_j is not None,",
        "chosen, reading = min(\n        group, key=lambda rc: (rc[1].energy_j is not None,",
        *AGGREGATION,
    ),
    mutant(
        "nvml-counter-microjoules",
        "the NVML energy counter (mJ) converted to joules as if it were in uJ",
        "core/energy_backends/nvml.py",
        "        return (end_mj - start_mj) / 1000.0\n",
        "        return (end_mj - start_mj) / 1e6\n",
        NVML_ENERGY,
    ),
    mutant(
        "prompts-shuffle-unseeded",
        "shuffled prompts not seeded: every rank (and every cycle) gets another selection",
        "prompts/sources.py",
        "        random.Random(config.seed).shuffle(prompts)",
        "        random.Random().shuffle(prompts)",
        PROMPTS,
    ),
    mutant(
        "aggregate-unknown-rate-as-zero",
        "a process without tokens/s averaged in as 0 tokens/s",
        "results/aggregation.py",
        "rates = [r.tokens_per_second for r in counted if r.tokens_per_second is not None]",
        "rates = [r.tokens_per_second or 0.0 for r in counted]",
        *AGGREGATION,
    ),
    mutant(
        "aggregate-total-rate-all-tokens",
        "the total tokens/s over the wall window counting prompt tokens too",
        "results/aggregation.py",
        "total_tokens_per_second=output_tokens / wall_s if",
        "total_tokens_per_second=(output_tokens + sum(r.input_tokens for r in results))"
        " / wall_s if",
        *AGGREGATION,
    ),
    mutant(
        "overlap-against-longest",
        "the overlap check measured against the longest window instead of the shortest",
        "results/verification.py",
        "    shortest = min(results, key=lambda r: r.inference_duration_s)",
        "    shortest = max(results, key=lambda r: r.inference_duration_s)",
        *AGGREGATION,
    ),
    Mutant(
        "baseline-partly-cached",
        "a baseline taken from the cache when only some of its GPUs are cached",
        (
            Edit(
                SRC + "core/baseline.py",
                "            return None\n        found.append(parsed)",
                "            continue\n        found.append(parsed)",
            ),
            Edit(SRC + "core/baseline.py", "    return found\n", "    return found or None\n"),
        ),
        BASELINE,
    ),
    mutant(
        "compare-unmeasured-as-zero",
        "a cycle that did not measure a metric counted as 0 in the comparison's mean",
        "results/compare.py",
        "data = np.asarray([v for v in values if v is not None], dtype=float)",
        "data = np.asarray([v or 0.0 for v in values], dtype=float)",
        COMPARE,
    ),
    mutant(
        "itl-past-the-request-end",
        "a finished request's inter-token gaps counted up to the batch's last step",
        "core/latency.py",
        "zip(steps, steps[1:], strict=False)",
        "zip(step_times_s, step_times_s[1:], strict=False)",
        LATENCY,
    ),
    mutant(
        "power-integral-not-clipped-at-end",
        "the power integral runs to the last sample instead of the window's end",
        "core/power_integral.py",
        "    hi = points[-1][0] if end_s is None else end_s\n",
        "    hi = points[-1][0]\n",
        "tests/unit/core/test_power_integral.py",
    ),
    mutant(
        "csv-nan-as-text",
        "a NaN or infinite figure written as text in the CSV instead of an empty cell",
        "results/exporters.py",
        '        return repr(value) if math.isfinite(value) else ""',
        "        return repr(value)",
        *EXPORTS_ALL,
    ),
    mutant(
        "completeness-last-process-ignored",
        "the last expected process neither loaded nor reported missing",
        "results/verification.py",
        "    for index in range(expected):",
        "    for index in range(expected - 1):",
        *AGGREGATION,
    ),
    mutant(
        "throttle-any-reason-bit",
        "any clock-event reason (idle, application clocks) taken as throttling",
        "core/throttle.py",
        "        detected=bool(bits & THROTTLE_MASK),",
        "        detected=bool(bits),",
        *THROTTLE,
    ),
    mutant(
        "aggregate-joules-per-token-adjusted",
        "the aggregate's J/token divides the adjusted energy instead of the raw energy",
        "results/aggregation.py",
        "            breakdown.raw_j / output_tokens\n",
        "            breakdown.adjusted_j / output_tokens\n",
        *AGGREGATION,
    ),
    mutant(
        "warmup-cv-whole-history",
        "the warmup CV taken over every latency so far instead of the last window",
        "core/warmup.py",
        "cv = coefficient_of_variation(latencies[-config.window_size :])",
        "cv = coefficient_of_variation(latencies)",
        WARMUP,
    ),
    mutant(
        "timeseries-bucket-rounded",
        "sidecar samples bucketed to the nearest second instead of the second they fall in",
        "core/timeseries.py",
        "        bucket = math.floor(max(0.0, s.t_s - start_s) * resample_hz)",
        "        bucket = round(max(0.0, s.t_s - start_s) * resample_hz)",
        TIMESERIES,
    ),
    mutant(
        "facility-from-cpu-dram",
        "the facility boundary scaled from the CPU and DRAM instead of the whole node",
        "domain/energy.py",
        "        boundaries.append(_facility(node, output_tokens, pue, grid_intensity_g_per_kwh))",
        "        boundaries.append(\n"
        "            _facility(boundaries[1], output_tokens, pue, grid_intensity_g_per_kwh)\n"
        "        )",
        *BOUNDARIES,
    ),
    mutant(
        "headline-node-on-gpu",
        "the headline of a GPU run taken from the whole node instead of the GPUs",
        "domain/energy.py",
        '    return "gpu" if gpus_expected else "cpu_dram"',
        '    return "node" if gpus_expected else "cpu_dram"',
        *BOUNDARIES,
    ),
    mutant(
        "boundary-without-its-gpu",
        "a boundary that needs an unmeasured GPU reported as the sum of the rest",
        "domain/energy.py",
        '    if "gpu" in unmeasured or not present:',
        "    if not present:",
        *BOUNDARIES,
    ),
    mutant(
        "boundary-above-idle-is-raw",
        "a boundary's energy above idle summed from its components' raw energy",
        "domain/energy.py",
        "    above_j = _sum_or_none([c.above_idle_j for c in present])",
        "    above_j = _sum_or_none([c.energy_j for c in present])",
        *BOUNDARIES,
    ),
    mutant(
        "co2e-per-wh",
        "CO2e computed per Wh instead of per kWh of grid intensity",
        "domain/energy.py",
        "        energy_j / JOULES_PER_KWH * grid_g_per_kwh",
        "        energy_j / 3600.0 * grid_g_per_kwh",
        *BOUNDARIES,
    ),
    mutant(
        "facility-above-idle-unscaled",
        "the facility's energy above idle not scaled by the PUE",
        "domain/energy.py",
        "    above_j = node.above_idle_j * pue if node.above_idle_j is not None else None",
        "    above_j = node.above_idle_j",
        *BOUNDARIES,
    ),
    mutant(
        "combine-window-shortest",
        "a component summed over processes keeps the shortest window",
        "domain/energy.py",
        "            window_s=max(p.window_s for p in parts),",
        "            window_s=min(p.window_s for p in parts),",
        *BOUNDARIES,
        *AGGREGATION,
    ),
    mutant(
        "flops-embedding-in-n",
        "embedding parameters counted in N (the lookup table does no multiply)",
        "core/flops.py",
        "        body_params=sum(p.numel() for p in model.parameters() if id(p) not in not_body),",
        "        body_params=sum(p.numel() for p in model.parameters() if id(p) not in not_body)\n"
        "        + sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Embedding)),",
        FLOPS,
    ),
    mutant(
        "flops-training-6n",
        "the training formula (6N per token) instead of inference's 2N",
        "core/flops.py",
        "        2.0 * geometry.body_params * fed\n"
        "        + 2.0 * geometry.head_params * output_tokens",
        "        6.0 * geometry.body_params * fed\n"
        "        + 2.0 * geometry.head_params * output_tokens",
        FLOPS,
    ),
    mutant(
        "flops-unknown-skipped",
        "a process with unknown FLOPs skipped in the total instead of making it unknown",
        "results/aggregation.py",
        "    return None if any(v is None for v in values) else float(sum(values))",
        "    return float(sum(v for v in values if v is not None))",
        *AGGREGATION,
    ),
    mutant(
        "load-closed-loop-rate",
        "a rate load waits for each request before handing over the next (a closed loop)",
        "core/load/runner.py",
        "        delay_s = start_s + due_s - time.monotonic()",
        "        if tasks:\n            await tasks[-1]\n"
        "        delay_s = start_s + due_s - time.monotonic()",
        LOAD + "test_load_runner.py",
    ),
    mutant(
        "load-gamma-scale",
        "gamma gaps drawn with the mean as their scale: the rate divided by the burstiness",
        "core/load/arrivals.py",
        "    return rng.gamma(burstiness, mean_s / burstiness, count)",
        "    return rng.gamma(burstiness, mean_s, count)",
        LOAD + "test_arrivals.py",
    ),
    mutant(
        "load-attribution-busy-only",
        "the energy between steps left out: the parts no longer add up to the window",
        "core/load/attribution.py",
        "    spans = list(zip([window[0], *starts[1:]], [*starts[1:], window[1]], strict=True))",
        "    spans = [(s.start_s, s.end_s) for s in steps]",
        LOAD + "test_energy_attribution.py",
    ),
    mutant(
        "load-attribution-per-phase",
        "a mixed step's prefill share taken over its prefill tokens only (energy counted twice)",
        "core/load/attribution.py",
        "            prefill[request_id] += step_j * n / tokens",
        "            prefill[request_id] += step_j * n / sum(step.prefill_tokens.values())",
        LOAD + "test_energy_attribution.py",
    ),
    mutant(
        "load-goodput-one-token-fails",
        "a one-token request (no TPOT) counted as missing the TPOT objective",
        "core/load/goodput.py",
        "    return slo.tpot_ms is None or tpot_ms is None or tpot_ms <= slo.tpot_ms",
        "    return slo.tpot_ms is None or (tpot_ms is not None and tpot_ms <= slo.tpot_ms)",
        LOAD + "test_goodput.py",
    ),
    mutant(
        "load-steady-drain-early",
        "the saturated window ends when the batch is last seen full, not when it leaves it",
        "core/load/steady_state.py",
        "    return counts[full[0]][0], counts[full[-1] + 1][0]",
        "    return counts[full[0]][0], counts[full[-1]][0]",
        LOAD + "test_steady_window.py",
    ),
    mutant(
        "load-steady-arrival-as-admission",
        "a queued request counted as running from its arrival though its admission is known",
        "core/load/steady_state.py",
        "if r.scheduled_s is None else r.scheduled_s",
        "if r.scheduled_s is None else r.arrival_s",
        LOAD + "test_steady_window.py",
    ),
    mutant(
        "report-text-unescaped",
        "text from a result put into the report page as it is (markup in a name would run)",
        "results/report_html.py",
        '    return Html(html.escape("n/a" if value is None else str(value), quote=True))',
        '    return Html(html.escape("n/a" if value is None else str(value), quote=False))',
        REPORT_HTML,
    ),
    mutant(
        "report-figure-uri-prefix-only",
        "a figure's data URI checked by its prefix only, so quotes after it leave the attribute",
        "results/report_html.py",
        "    if not PNG_DATA_URI.fullmatch(data_uri):",
        "    if not PNG_DATA_URI.match(data_uri):",
        REPORT_HTML,
    ),
    mutant(
        "api-persistence-unchecked",
        "llem.measure's windows not given their GPUs' state, so persistence mode off is silent",
        "api/measurement.py",
        "            gpus=self.gpus,\n",
        "            gpus=(),\n",
        "tests/unit/api/test_monitor_nvml.py",
    ),
    mutant(
        "power-readings-gpu-without-any-dropped",
        "a GPU none of whose power reads succeeded left out of the few-samples check's count",
        "core/power_integral.py",
        "        if s.device_index != CPU_DEVICE_INDEX:\n            counts[",
        "        if s.device_index != CPU_DEVICE_INDEX and s.power_w is not None:\n"
        "            counts[",
        "tests/unit/core/test_nvml_sample_counts.py",
    ),
    mutant(
        "engine-processes-as-others",
        "the engine's own processes (vLLM's engine core) reported as other work on its GPU",
        "core/energy_backends/nvml.py",
        "[pid for pid in pids if pid not in self._own_pids]",
        "pids",
        "tests/unit/core/test_nvml_processes.py",
    ),
    mutant(
        "rank-environment-every-gpu",
        "a rank's result describing every GPU the process sees, not the rank's own",
        "api/ranks.py",
        "environment=collect_environment(ordinals),",
        "environment=collect_environment(),",
        "tests/unit/api/test_rank_results_nvml.py",
    ),
    mutant(
        "experiment-copy-read-as-original",
        "an experiment directory outside <root>/raw/ resolved to <grandparent>/raw/<id>",
        "results/layout.py",
        '        if absolute.parent.name != "raw":\n',
        "        if False:\n",
        "tests/unit/cli/test_shared_options.py",
    ),
    mutant(
        "plot-null-as-python",
        "a swept parameter's null written as Python's None in a figure's legend",
        "results/plots.py",
        "={format_value(row.parameters[p])}",
        "={row.parameters[p]}",
        "tests/unit/results/test_plots.py",
    ),
]
