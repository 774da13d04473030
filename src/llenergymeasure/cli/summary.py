"""The table printed at the end of `llem run` and by `llem results show`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli.console import console

if TYPE_CHECKING:
    from llenergymeasure.domain.energy import EnergyBoundary
    from llenergymeasure.domain.experiment import AggregatedResult
    from llenergymeasure.domain.metrics import ThermalThrottleInfo


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
        ("processes", result.aggregation.processes_label),
        ("requests", str(result.num_requests)),
        ("tokens (in / out)", f"{result.input_tokens:,} / {result.output_tokens:,}"),
        ("inference window", fmt(result.wall_window_s, "s")),
        ("throughput", fmt(result.total_tokens_per_second, "tok/s")),
        ("energy method", result.energy_method),
        ("energy boundary", (energy.boundary if energy else None) or "n/a"),
        ("energy (raw)", fmt(energy.raw_j if energy else None, "J")),
        ("energy (above idle)", fmt(energy.adjusted_j if energy else None, "J")),
        (
            "baseline power",
            f"{fmt(energy.baseline_power_w if energy else None, 'W')}"
            f" ({energy.baseline_method if energy else 'unavailable'})",
        ),
        ("energy / output token", fmt(result.energy_per_output_token_j, "J", 4)),
        ("FLOPs useful / executed", _flops(result)),
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
        (
            "e2e (last token) / batch p50",
            f"{fmt(latency.e2e_p50_ms if latency else None, 'ms', 1)} / "
            f"{fmt(latency.batch_return_p50_ms if latency else None, 'ms', 1)}",
        ),
        ("throttling (s)", _throttling(result.thermal_throttle)),
    ]
    rows += [(f"  boundary {b.name}", _boundary(b)) for b in result.energy_boundaries]
    rows += _load_rows(result)
    rows += _phase_rows(result)
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


def _load_rows(result: AggregatedResult) -> list[tuple[str, str]]:
    """Rate, steady window and goodput of a `load:` experiment; none offline."""
    load = result.load
    if load is None:
        return []
    steady = load.steady
    rows = [
        (
            f"load ({load.mode}) planned / achieved",
            f"{fmt(load.planned_rate_per_s, 'req/s')} / {fmt(load.achieved_rate_per_s, 'req/s')}",
        ),
        (
            "steady window",
            f"{load.steady_window.rule}: "
            + (
                f"{fmt(steady.end_s - steady.start_s, 's')}, {fmt(steady.energy_j, 'J')}, "
                f"{steady.output_tokens:,.0f} tokens"
                if steady is not None
                else "not found"
            ),
        ),
    ]
    if load.goodput is not None:
        good = load.goodput
        rows.append(
            (
                "goodput (requests / tokens)",
                f"{good.good_requests} of {good.requests} / "
                f"{good.good_output_tokens:,} of {good.output_tokens:,}",
            )
        )
    if load.attributed is not None:
        split = load.attributed
        rows.append(
            (
                "prefill / decode (attributed)",
                f"{fmt(split.prefill_j, 'J')} / {fmt(split.decode_j, 'J')}",
            )
        )
    return rows


def _phase_rows(result: AggregatedResult) -> list[tuple[str, str]]:
    """Prefill and decode energy by subtraction of a prefill pass; none without one."""
    phase = result.phase_subtraction
    if phase is None:
        return []
    return [
        ("phase split", f"{phase.method}, boundary {phase.boundary or 'n/a'}"),
        (
            "  prefill / decode",
            f"{fmt(phase.prefill_j, 'J')} / {fmt(phase.decode_j, 'J')} of {fmt(phase.full_j, 'J')}",
        ),
        (
            "  per token (prompt / decode)",
            f"{fmt(phase.prefill_j_per_token, 'J', 4)} x {phase.prefill_tokens:,} / "
            f"{fmt(phase.decode_j_per_token, 'J', 4)} x {phase.decode_tokens:,}",
        ),
        (
            "  windows (prefill / full)",
            f"{fmt(phase.prefill_window_s, 's', 3)} / {fmt(phase.full_window_s, 's', 3)}",
        ),
        *(("  warning", note) for note in phase.warnings),
    ]


def _boundary(boundary: EnergyBoundary) -> str:
    """`285.90 J (283.99 J above idle), 0.5823 J/token` or why it is n/a."""
    if boundary.energy_j is None:
        return f"n/a ({boundary.note})" if boundary.note else "n/a"
    text = (
        f"{fmt(boundary.energy_j, 'J')} ({fmt(boundary.above_idle_j, 'J')} above idle), "
        f"{fmt(boundary.energy_per_output_token_j, 'J/token', 4)}"
    )
    if boundary.co2e_g is not None:
        text += f", {fmt(boundary.co2e_g, 'gCO2e', 3)}"
    if boundary.unmeasured:
        text += f"; not measured here: {', '.join(boundary.unmeasured)}"
    return text


def _throttling(info: ThermalThrottleInfo | None) -> str:
    """Seconds `thermal 0.0, power cap 4.2, hw slowdown 0.0`, n/a where not observed."""
    if info is None:
        from llenergymeasure.domain.metrics import ThermalThrottleInfo

        info = ThermalThrottleInfo()
    return (
        f"thermal {fmt(info.thermal_duration_s, digits=1)}, "
        f"power cap {fmt(info.power_cap_duration_s, digits=1)}, "
        f"hw slowdown {fmt(info.hw_slowdown_duration_s, digits=1)}"
    )


def _flops(result: AggregatedResult) -> str:
    """Useful / executed FLOPs and the method; a `palm_2n` result has one total."""

    def sci(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3e}"

    if result.flops_method == "palm_2n":
        return f"{sci(result.total_flops)} (palm_2n)"
    method = f" ({result.flops_method})" if result.flops_method else ""
    return f"{sci(result.flops_useful)} / {sci(result.flops_executed)}{method}"


def _which(processes: list[int]) -> str:
    """`process 1`, `processes 0, 1`."""
    listed = ", ".join(str(i) for i in processes)
    return f"process {listed}" if len(processes) == 1 else f"processes {listed}"
