"""The table printed at the end of `llem run` and by `llem results show`."""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli.console import console
from llenergymeasure.domain.experiment import AggregatedResult


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    """A number with its unit, or 'n/a' where it was not measured."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{' ' + unit if unit else ''}"


def print_summary(
    result: AggregatedResult, experiment_dir: Path | None, aggregated_path: Path | None
) -> None:
    """Key figures, the energy method, warnings and where the files are."""
    energy = result.energy_breakdown
    latency = result.latency
    table = Table(title=Text(result.experiment_id), show_header=False, title_justify="left")
    table.add_column("metric", style="bold")
    table.add_column("value")
    rows = [
        ("model", result.model_name),
        ("processes", _processes(result)),
        ("requests", str(result.num_requests)),
        ("tokens (in / out)", f"{result.input_tokens:,} / {result.output_tokens:,}"),
        ("inference window", fmt(result.wall_window_s, "s")),
        ("throughput", fmt(result.total_tokens_per_second, "tok/s")),
        ("energy method", result.energy_method),
        ("energy (raw)", fmt(energy.raw_j if energy else None, "J")),
        ("energy (above idle)", fmt(energy.adjusted_j if energy else None, "J")),
        (
            "baseline power",
            f"{fmt(energy.baseline_power_w if energy else None, 'W')}"
            f" ({energy.baseline_method if energy else 'unavailable'})",
        ),
        ("energy / output token", fmt(result.energy_per_output_token_j, "J", 4)),
        ("FLOPs", f"{result.total_flops:.3e}" if result.total_flops is not None else "n/a"),
        (
            "TTFT p50 / p95",
            f"{fmt(latency.ttft_p50_ms if latency else None, 'ms', 1)} / "
            f"{fmt(latency.ttft_p95_ms if latency else None, 'ms', 1)}",
        ),
        (
            "ITL p50 / p95",
            f"{fmt(latency.itl_p50_ms if latency else None, 'ms', 1)} / "
            f"{fmt(latency.itl_p95_ms if latency else None, 'ms', 1)}",
        ),
    ]
    for name, value in rows:
        table.add_row(name, Text(value))
    console.print(table)
    several = result.aggregation.num_processes > 1
    for warning in result.warnings:
        where = f" ({_which(warning.processes)})" if several and warning.processes else ""
        console.print(
            f"[yellow]warning[/] {escape(warning.code)}{where}: {escape(warning.message)}",
            highlight=False,
            soft_wrap=True,
        )
    for note in result.aggregation.warnings:
        console.print(
            f"[yellow]warning[/] aggregation: {escape(note)}", highlight=False, soft_wrap=True
        )
    if experiment_dir is not None:
        console.print(f"raw results:        {experiment_dir}", markup=False, highlight=False)
    if aggregated_path is not None:
        console.print(f"aggregated result:  {aggregated_path}", markup=False, highlight=False)


def _processes(result: AggregatedResult) -> str:
    info = result.aggregation
    if not info.partial:
        return str(info.num_processes)
    return f"{info.num_processes} of {info.expected_num_processes} (partial)"


def _which(processes: list[int]) -> str:
    """`process 1`, `processes 0, 1`."""
    listed = ", ".join(str(i) for i in processes)
    return f"process {listed}" if len(processes) == 1 else f"processes {listed}"
