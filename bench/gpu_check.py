"""Real-device check: NVML counter energy against the sampler's power integral.

On cuda:0, with no weights to fetch: measure idle power through NVML, load a randomly
initialised Llama of about 1.1B parameters (TinyLlama's shape) in bf16, warm up until
the latency is stable, then run one fixed `generate` workload four times: sampler off,
sampler at 100 ms, sampler at 10 ms, sampler off again. For each run it prints the
counter energy, the trapezoidal integral of the sampled power and their ratio, tokens/s,
J/token, and the sampler's cost in tokens/s against the mean of the two sampler-off
runs. Then a full `llem run` of the quickstart on the GPU: its components, boundaries and
the baseline's source (the counter). Then the deployment runs (docs/deployment.md): the
quickstart in bitsandbytes 4-bit where bitsandbytes is installed, and, where two GPUs are
visible, the quickstart placed over both by `device_map` (`parallel.pipeline: 2`) and
tiny-llama split over two processes by tensor parallelism (`parallel.tensor: 2`, NCCL);
each prints its GPUs, energy, tokens and stored model size. Then the engines on the GPU:
the quickstart on `transformers-cb` under a Poisson load (its energy split by phase from
the engine's steps) and, where vLLM is installed, on `engine: vllm`. Record the output
in docs/validation/README.md.

The window is built from llem's core parts, not the public `llem.measure`: the
sampler-off runs read the NVML counter with no sampler at all, which no public window
does, and the integral is compared with the counter of the same window.

    make gpu-check        (or .venv/bin/python bench/gpu_check.py --help)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson

from llenergymeasure.config.measurement import BaselineConfig, WarmupConfig
from llenergymeasure.core.baseline import measure_baselines
from llenergymeasure.core.energy_backends.cuda_devices import open_cuda_devices
from llenergymeasure.core.energy_backends.nvml import NvmlBackend, NvmlSampleSource
from llenergymeasure.core.energy_backends.nvml_library import nvml_available
from llenergymeasure.core.environment import collect_environment
from llenergymeasure.core.warmup import create_warmup_inference_fn, warmup_until_converged
from llenergymeasure.core.window import MeasurementWindow

SAMPLER_SETTINGS_MS = (None, 100, 10, None)  # None: sampler off


def require_gpu() -> None:
    """Exit with a clear message where there is no CUDA device or no NVML."""
    import torch

    if not torch.cuda.is_available():
        sys.exit(
            "gpu-check needs an NVIDIA GPU: torch sees no CUDA device here "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}). Run `make gpu-check` "
            "on a GPU machine and record its output in docs/validation/README.md."
        )
    if not nvml_available():
        sys.exit("gpu-check needs NVML (the NVIDIA driver's libnvidia-ml.so.1); it did not start.")


def build_model(layers: int) -> Any:
    """A randomly initialised Llama with TinyLlama-1.1B's shape, bf16 on cuda:0."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=layers,
        num_attention_heads=32,
        num_key_value_heads=4,
        vocab_size=32000,
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    with torch.device("cuda:0"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    return model


def random_inputs(batch_size: int, prompt_tokens: int) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 32000, (batch_size, prompt_tokens), generator=generator)
    return {"input_ids": ids.to("cuda:0"), "attention_mask": torch.ones_like(ids).to("cuda:0")}


def measured_run(
    model: Any,
    inputs: dict[str, Any],
    new_tokens: int,
    backend: NvmlBackend,
    interval_ms: int | None,
) -> dict[str, Any]:
    """One `MeasurementWindow` around `generate`, its sampling process reading the GPU.

    Sampler off: the window's sampling process runs with no source.
    """
    import torch

    sources = [] if interval_ms is None else [NvmlSampleSource(backend.devices)]
    window = MeasurementWindow([backend], sources, interval_ms or 1000, torch.cuda.synchronize)

    def generate() -> None:
        with torch.inference_mode():
            model.generate(
                **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False
            )

    result = window.run(generate)
    (measured,) = result.readings
    tokens = new_tokens * inputs["input_ids"].shape[0]
    counter_j = measured.total_j
    integral_j = result.power_integral_j
    return {
        "sampler_interval_ms": interval_ms,
        "duration_s": result.window_s,
        "output_tokens": tokens,
        "tokens_per_s": tokens / result.busy_s,
        "counter_j": counter_j,
        "power_integral_j": integral_j,
        "integral_over_counter": integral_j / counter_j if integral_j and counter_j else None,
        "j_per_token": counter_j / tokens if counter_j is not None else None,
        "samples": len(result.samples),
        "sampler_errors": result.sampler_errors,
    }


def add_overheads(rows: list[dict[str, Any]]) -> None:
    """Tokens/s lost to the sampler, against the mean of the sampler-off runs."""
    off_tps = statistics.fmean(r["tokens_per_s"] for r in rows if r["sampler_interval_ms"] is None)
    for r in rows:
        r["sampler_overhead_pct"] = 100.0 * (off_tps - r["tokens_per_s"]) / off_tps


def fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def print_report(summary: str, method: str, baseline: Any, rows: list[dict[str, Any]]) -> None:
    print(summary)
    std = fmt(baseline.std_w, ".2f")
    print(f"energy method {method}; baseline {fmt(baseline.power_w, '.2f')} W (std {std} W)")
    print(
        f"{'sampler':>8} {'window s':>9} {'tok/s':>9} {'counter J':>10} {'integral J':>11} "
        f"{'ratio':>7} {'J/token':>9} {'overhead':>9}"
    )
    for r in rows:
        interval = "off" if r["sampler_interval_ms"] is None else f"{r['sampler_interval_ms']} ms"
        print(
            f"{interval:>8} {r['duration_s']:>9.2f} {r['tokens_per_s']:>9.1f} "
            f"{fmt(r['counter_j'], '.1f'):>10} {fmt(r['power_integral_j'], '.1f'):>11} "
            f"{fmt(r['integral_over_counter'], '.4f'):>7} {fmt(r['j_per_token'], '.4f'):>9} "
            f"{r['sampler_overhead_pct']:>8.2f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=22, help="22 layers: about 1.1B parameters")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=512)
    parser.add_argument("--baseline-s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("results/bench/gpu_check.json"))
    args = parser.parse_args()
    require_gpu()
    import torch

    gpus = open_cuda_devices([0])
    environment = collect_environment([0], gpus)
    backend = NvmlBackend(gpus)
    baselines = measure_baselines([backend], BaselineConfig(duration_s=args.baseline_s))
    baseline = baselines.of("gpu")
    model = build_model(args.layers)
    inputs = random_inputs(args.batch_size, args.prompt_tokens)
    warmup = warmup_until_converged(
        create_warmup_inference_fn(
            model, inputs, {"max_new_tokens": 32, "min_new_tokens": 32}, torch.cuda.synchronize
        ),
        WarmupConfig(),
    )
    rows = [
        measured_run(model, inputs, args.new_tokens, backend, interval)
        for interval in SAMPLER_SETTINGS_MS
    ]
    add_overheads(rows)
    print_report(environment.summary_line, backend.method, baseline, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(),
        "environment": environment.model_dump(mode="json"),
        "energy_method": backend.method,
        "baseline_power_w": baseline.power_w,
        "baseline_std_w": baseline.std_w,
        "parameters": sum(p.numel() for p in model.parameters()),
        "warmup": warmup.model_dump(mode="json"),
        "args": {k: str(v) for k, v in vars(args).items()},
        "rows": rows,
    }
    record["full_run"] = full_run()
    record["deployment_runs"] = deployment_runs(torch.cuda.device_count())
    record["engine_runs"] = engine_runs()
    args.out.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))
    print(f"written to {args.out}")


def full_run() -> dict[str, Any]:
    """The quickstart through `llem run`'s own path on cuda:0; its energy as stored."""
    import llenergymeasure as llem

    config = llem.load_config(
        "configs/examples/quickstart.yaml",
        ["measurement.thermal_floor.seconds=5", "results_dir=results/gpu-check"],
    )
    result = llem.run_experiment(config).aggregated
    print(f"full llem run {result.experiment_id}: energy method {result.energy_method}")
    for c in result.energy_components:
        print(
            f"  {c.component:<5} {c.method:<20} {fmt(c.energy_j, '.1f'):>9} J, baseline "
            f"{fmt(c.baseline_power_w, '.2f')} W from the {c.baseline_source}, "
            f"above idle {fmt(c.above_idle_j, '.1f')} J"
        )
    for b in result.energy_boundaries:
        print(f"  boundary {b.name:<9} {fmt(b.energy_j, '.1f'):>9} J  {b.note or ''}")
    print("  warnings: " + ", ".join(w.code for w in result.warnings))
    return result.model_dump(mode="json")


def deployment_runs(gpu_count: int) -> dict[str, Any]:
    """bitsandbytes 4-bit, and with two GPUs a device_map pipeline and a tensor-parallel pair."""
    import importlib.util

    runs: dict[str, Any] = {}
    quickstart = "configs/examples/quickstart.yaml"
    common = ["measurement.thermal_floor.seconds=5", "results_dir=results/gpu-check"]
    if importlib.util.find_spec("bitsandbytes") is not None:
        runs["bitsandbytes_4bit"] = deployment_run(
            quickstart,
            [*common, "model.quantization.method=bitsandbytes", "model.quantization.bits=4"],
        )
    else:
        print("bitsandbytes run skipped: pip install 'llenergymeasure[quantization]'")
    if gpu_count < 2:
        print(f"parallel runs skipped: {gpu_count} GPU visible, they need 2")
        return runs
    runs["pipeline_2"] = deployment_run(quickstart, [*common, "parallel.pipeline=2"])
    runs["tensor_2"] = deployment_run(
        quickstart, [*common, "model.name=builtin:tiny-llama", "parallel.tensor=2"]
    )
    return runs


def engine_runs() -> dict[str, Any]:
    """The quickstart on transformers-cb under a Poisson load, and on vLLM where installed."""
    import importlib.util

    quickstart = "configs/examples/quickstart.yaml"
    common = ["measurement.thermal_floor.seconds=5", "results_dir=results/gpu-check"]
    load = [
        "engine=transformers-cb",
        "generation.batch_size=1",
        "load.mode=rate",
        "load.rate_per_s=8",
        "load.num_requests=64",
    ]
    runs = {"transformers_cb_load": deployment_run(quickstart, [*common, *load])}
    split = runs["transformers_cb_load"]["load"]["attributed"]
    if split is not None:
        print(f"  attributed: prefill {split['prefill_j']:.1f} J, decode {split['decode_j']:.1f} J")
    if importlib.util.find_spec("vllm") is None:
        print("vLLM run skipped: pip install 'llenergymeasure[vllm]'")
        return runs
    vllm = ["engine=vllm", "generation.batch_size=1", "vllm.gpu_memory_utilization=0.5"]
    runs["vllm"] = deployment_run(quickstart, [*common, *vllm])
    return runs


def deployment_run(config_path: str, overrides: list[str]) -> dict[str, Any]:
    """One `llem run` with `overrides` (several processes through accelerate launch)."""
    import llenergymeasure as llem

    result = llem.run_experiment(config_path, overrides).aggregated
    devices = [d for p in result.processes for d in p.device_ids]
    quantization = result.quantization
    print(
        f"{' '.join(overrides[len(overrides) - 2 :])}: {result.experiment_id}, GPUs "
        f"{', '.join(devices)}, {result.output_tokens} tokens, energy "
        f"{fmt(result.energy_breakdown.raw_j if result.energy_breakdown else None, '.1f')} J "
        f"({result.energy_method}), model {fmt(result.model_memory_mb, '.1f')} MB stored"
        + (f", {quantization.quantized_weights} weights quantized" if quantization else "")
        + f"; attribution verified: {result.aggregation.gpu_attribution_verified}"
    )
    return result.model_dump(mode="json")


if __name__ == "__main__":
    main()
