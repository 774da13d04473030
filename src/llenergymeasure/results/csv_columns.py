"""The columns of llem's CSV exports, in order, and where each value comes from.

Each group maps a column to a dotted attribute path in the result (digits index lists);
the order is that of docs/formats.md: the core figures, each group together, the
resolved config fields, then the `process_<i>_*` columns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import get_args

from llenergymeasure.domain.energy import BoundaryName

# Column -> attribute path in the result (dotted; digits index lists).
AGGREGATED_CORE = {
    "experiment_id": "experiment_id",
    "config_name": "config_name",
    "model_name": "model_name",
    "num_processes": "aggregation.num_processes",
    "num_requests": "num_requests",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "wall_window_s": "wall_window_s",
    "avg_tokens_per_second": "avg_tokens_per_second",
    "total_tokens_per_second": "total_tokens_per_second",
    "energy_method": "energy_method",
    "energy_per_output_token_j": "energy_per_output_token_j",
    "total_flops": "total_flops",
    "flops_method": "flops_method",
    "flops_useful": "flops_useful",
    "flops_executed": "flops_executed",
    "created_at": "created_at",
    "aggregated_at": "aggregated_at",
}
# The codes of every warning of a result (`;` between them), so a CSV shows which rows
# rest on contended hardware, estimates or short windows.
WARNING_CODES = "warning_codes"
RAW_IDENTITY = {
    "experiment_id": "experiment_id",
    "process_index": "process_index",
    "num_processes": "num_processes",
    "host": "host",
    "pid": "pid",
    "device": "device",
}
RAW_FIGURES = {
    "config_name": "config_name",
    "model_name": "model_name",
    "dtype": "dtype",
    "started_at": "started_at",
    "inference_start_unix_s": "inference_start_unix_s",
    "inference_duration_s": "inference_duration_s",
    "num_requests": "num_requests",
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "tokens_per_second": "tokens_per_second",
    "energy_method": "energy_method",
    "energy_per_output_token_j": "energy_per_output_token_j",
    "total_flops": "flops.total_flops",
    "flops_method": "flops.method",
    "flops_useful": "flops.flops_useful",
    "flops_executed": "flops.flops_executed",
    "sample_interval_ms": "sample_interval_ms",
    "sample_count": "sample_count",
}
# gpu_uuid: the GPU devices of the process's energy measurement (`;` between several).
RAW_CORE = (*RAW_IDENTITY, "gpu_uuid", *RAW_FIGURES)
ENERGY = {
    "energy_raw_j": "energy_breakdown.raw_j",
    "energy_adjusted_j": "energy_breakdown.adjusted_j",
    "energy_baseline_w": "energy_breakdown.baseline_power_w",
    "energy_baseline_method": "energy_breakdown.baseline_method",
    "energy_boundary": "energy_breakdown.boundary",
    "energy_baseline_std_w": "energy_breakdown.baseline_std_w",
    "energy_baseline_energy_j": "energy_breakdown.baseline_energy_j",
}
# Every boundary side by side (domain/energy.py): energy_<boundary>_j and its siblings.
BOUNDARY_FIELDS = {
    "j": "energy_j",
    "above_idle_j": "above_idle_j",
    "per_output_token_j": "energy_per_output_token_j",
    "above_idle_per_output_token_j": "above_idle_per_output_token_j",
}
BOUNDARY_COLUMNS = (
    *(f"energy_{b}_{suffix}" for b in get_args(BoundaryName) for suffix in BOUNDARY_FIELDS),
    "energy_facility_co2e_g",
)
# thermal_throttle_*: thermal slowdown only; the power cap and HW slowdown have their own.
THERMAL = {
    "thermal_throttle_detected": "thermal_throttle.thermal",
    "thermal_throttle_duration_sec": "thermal_throttle.thermal_duration_s",
    "thermal_max_temp_c": "thermal_throttle.max_temperature_c",
    "throttle_power_cap_duration_s": "thermal_throttle.power_cap_duration_s",
    "throttle_hw_slowdown_duration_s": "thermal_throttle.hw_slowdown_duration_s",
}
# Paths in the EnvironmentMetadata (of the first host for an aggregate); gpus.0: first GPU.
ENV = {
    "env_gpu_name": "gpus.0.name",
    "env_gpu_vram_mb": "gpus.0.vram_mb",
    "env_cuda_version": "cuda_version",
    "env_driver_version": "driver_version",
    "env_gpu_temp_c": "gpus.0.temperature_c",
    "env_power_limit_w": "gpus.0.power_limit_w",
    "env_cpu_governor": "cpu_governor",
    "env_in_container": "in_container",
    "env_summary": "summary_line",
}
GPU = {
    "gpu_util_mean_pct": "extended.gpu_util_mean_pct",
    "gpu_mem_peak_mb": "extended.gpu_mem_peak_mb",
}
LATENCY = {
    "latency_e2e_mean_ms": "latency.e2e_mean_ms",
    "latency_e2e_p95_ms": "latency.e2e_p95_ms",
    "latency_ttft_p50_ms": "latency.ttft_p50_ms",
    "latency_ttft_p95_ms": "latency.ttft_p95_ms",
    "latency_itl_p50_ms": "latency.itl_p50_ms",
    "latency_itl_p95_ms": "latency.itl_p95_ms",
    "latency_batch_return_p50_ms": "latency.batch_return_p50_ms",
    "latency_batch_return_p95_ms": "latency.batch_return_p95_ms",
}
MEMORY = {"process_rss_peak_mb": "extended.process_rss_peak_mb"}
BATCH = {"batch_effective_size": "extended.batch_effective_size"}
KV_CACHE = {"kv_cache_hit_rate": "extended.kv_cache_hit_rate"}
PADDING = {
    "padding_share": "padding.padding_share",
    "padding_output_share": "padding.output_padding_share",
    "padding_prompt_positions": "padding.prompt_positions",
    "padding_prompt_real_tokens": "padding.prompt_real_tokens",
    "padding_output_positions": "padding.output_positions",
}
# Each knob as requested and as it took effect (domain/deployment.py).
DEPLOYMENT = {
    f"deployment_{name}": f"deployment.{name}"
    for name in (
        "batching",
        "max_batch_tokens",
        "batch_count",
        "attn_implementation_requested",
        "attn_implementation_effective",
        "dtype_requested",
        "dtype_effective",
        "torch_compile_requested",
        "torch_compile_effective",
        "compile_s",
        "cache_implementation_requested",
        "cache_implementation_effective",
    )
}
# What quantization did (domain/deployment.py) and the memory the weights took.
QUANTIZATION = {
    "quantization_method": "quantization.method",
    "quantization_bits": "quantization.bits",
    "quantization_compute_dtype": "quantization.compute_dtype",
    "quantization_quantized_weights": "quantization.quantized_weights",
    "quantization_unquantized_memory_mb": "quantization.unquantized_memory_mb",
    "model_memory_mb": "model_memory_mb",
}
# Energy by phase: attributed from a load run's steps, or by the subtraction method.
PHASES = {
    "phase_attributed_prefill_j": "load.attributed.prefill_j",
    "phase_attributed_decode_j": "load.attributed.decode_j",
    "phase_subtraction_prefill_j": "phase_subtraction.prefill_j",
    "phase_subtraction_decode_j": "phase_subtraction.decode_j",
    "phase_subtraction_prefill_j_per_token": "phase_subtraction.prefill_j_per_token",
    "phase_subtraction_decode_j_per_token": "phase_subtraction.decode_j_per_token",
}
RESULT_GROUPS = {
    **ENERGY,
    **THERMAL,
    **GPU,
    **MEMORY,
    **LATENCY,
    **BATCH,
    **KV_CACHE,
    **PADDING,
    **DEPLOYMENT,
    **QUANTIZATION,
    **PHASES,
}
GROUPED_COLUMNS = (
    *ENERGY,
    *BOUNDARY_COLUMNS,
    "energy_scope",
    *THERMAL,
    *ENV,
    *GPU,
    *MEMORY,
    *LATENCY,
    *BATCH,
    *KV_CACHE,
    *PADDING,
    *DEPLOYMENT,
    *QUANTIZATION,
    *PHASES,
    "timeseries_path",
    WARNING_CODES,
    "config_hash",
)
# The resolved config of the experiment's manifest, one column per field.
CONFIG_PREFIX = "config."
PROCESS_FIELDS = ("gpu_uuid", "tokens", "energy_j", "energy_scope", "tokens_per_second")
PROCESS_COLUMN = re.compile(rf"^process_(\d+)_({'|'.join(PROCESS_FIELDS)})$")
NVML_UUID_PREFIXES = ("GPU-", "MIG-")


def order_columns(names: Iterable[str], core: Sequence[str]) -> list[str]:
    """Core, each group together, the config fields in the config's order, process columns."""
    positions = {name: i for i, name in enumerate([*core, *GROUPED_COLUMNS])}
    seen = {name: i for i, name in enumerate(dict.fromkeys(names))}

    def key(name: str) -> tuple[int, int, int]:
        if name in positions:
            return (0, positions[name], 0)
        if name.startswith(CONFIG_PREFIX):
            return (0, len(positions), seen[name])
        match = PROCESS_COLUMN.match(name)
        if match is None:
            raise ValueError(f"no place for CSV column {name!r}")
        return (1, int(match[1]), PROCESS_FIELDS.index(match[2]))

    return sorted(dict.fromkeys(names), key=key)
