"""Power over time of one experiment: every GPU's samples, the energy window, the baselines.

Power over time needs power readings in the time-series sidecars: llem samples power
on NVIDIA GPUs. A CPU-only run has none (its energy is a RAPL counter or the estimate
over the whole window, not a power trace), and the figure is refused with a message
saying so rather than drawing an empty or invented curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llenergymeasure.domain.experiment import AggregatedResult, RawProcessResult
from llenergymeasure.errors import ResultsError
from llenergymeasure.results.compare import device_name
from llenergymeasure.results.plots import finish_axes, new_figure, save_figure, titles
from llenergymeasure.results.timeseries import read_sidecar_samples

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class PowerTrace:
    """Power of one device over time, in seconds from the first process's window start."""

    label: str
    times_s: list[float]
    power_w: list[float]
    baseline_w: float | None


def power_traces(experiment_dir: Path, processes: Sequence[RawProcessResult]) -> list[PowerTrace]:
    """One trace per (process, GPU) with power readings, from the parquet sidecars.

    A process's idle baseline is shared evenly between its GPUs (a process usually
    owns one); the label says so where it owns several.
    """
    start = min(r.inference_start_unix_s for r in processes)
    traces = []
    for result in processes:
        if result.timeseries_path is None:
            continue
        offset_s = result.inference_start_unix_s - start
        by_device: dict[int, list[tuple[float, float]]] = {}
        for s in read_sidecar_samples(Path(experiment_dir) / result.timeseries_path):
            if s.device_index >= 0 and s.power_w is not None:
                by_device.setdefault(s.device_index, []).append((s.t_s + offset_s, s.power_w))
        baseline = result.energy_breakdown.baseline_power_w if result.energy_breakdown else None
        share = baseline / len(by_device) if baseline is not None and by_device else None
        for device, points in sorted(by_device.items()):
            label = f"GPU {device}" + (
                f" (process {result.process_index})" if len(processes) > 1 else ""
            )
            points.sort()
            traces.append(PowerTrace(label, [t for t, _ in points], [p for _, p in points], share))
    return traces


def plot_power(
    result: AggregatedResult,
    processes: Sequence[RawProcessResult],
    experiment_dir: Path,
    path: Path,
) -> Path:
    """Write `power_figure` as PNG.

    Raises:
        ResultsError: the experiment has no power readings (CPU-only, sidecars off).
        LlemError: matplotlib is not installed.

    """
    return save_figure(power_figure(result, processes, experiment_dir), path)


def power_figure(
    result: AggregatedResult, processes: Sequence[RawProcessResult], experiment_dir: Path
) -> Figure:
    """Power of every GPU over time, the energy window shaded, the idle baselines dashed.

    Raises:
        ResultsError: the experiment has no power readings (CPU-only, sidecars off).
        LlemError: matplotlib is not installed.

    """
    traces = power_traces(experiment_dir, processes)
    if not traces:
        raise ResultsError(
            f"{result.experiment_id}: no power readings over time to plot: llem samples "
            f"power on NVIDIA GPUs only, and this run measured energy by {result.energy_method} "
            "(a CPU run has no power trace; see llem results show for its energy)"
        )
    fig = new_figure()
    ax = fig.subplots()
    start = min(r.inference_start_unix_s for r in processes)
    ax.axvspan(
        0,
        energy_window_end_unix_s(processes) - start,
        color="0.92",
        zorder=0,
        label="energy window",
    )
    for i, trace in enumerate(traces):
        color = f"C{i}"
        ax.plot(trace.times_s, trace.power_w, color=color, linewidth=1.4, label=trace.label)
        if trace.baseline_w is not None:
            ax.axhline(
                trace.baseline_w,
                color=color,
                linestyle="--",
                linewidth=1.0,
                label=f"{trace.label} idle baseline",
            )
    ax.set_xlabel("time from the start of the energy window (s)")
    ax.set_ylabel("power (W)")
    ax.set_ylim(bottom=0)
    titles(
        fig,
        ax,
        f"Power during inference: {result.model_name} on {device_name(result)}",
        f"{result.experiment_id}; energy: {result.energy_method}",
    )
    finish_axes(ax)
    return fig


def energy_window_end_unix_s(processes: Sequence[RawProcessResult]) -> float:
    """The last end of the processes' energy windows (their busy windows in schema 1)."""
    return max(
        r.inference_end_unix_s if r.energy_window_end_unix_s is None else r.energy_window_end_unix_s
        for r in processes
    )
