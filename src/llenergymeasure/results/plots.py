"""PNG figures for papers: a campaign's metric against a parameter, and what every figure shares.

matplotlib is an optional extra (`pip install "llenergymeasure[plot]"`), imported only
when a figure is drawn, through its object API (`Figure`, no pyplot state, the Agg
canvas), so drawing works without a display and in threads. Files are written atomically.
Power over time of one experiment is `results/power_plot.py`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llenergymeasure.config.campaign import format_value
from llenergymeasure.errors import LlemError, ResultsError
from llenergymeasure.fileio import atomic_target
from llenergymeasure.results.compare import Comparison, ComparisonRow, Interval
from llenergymeasure.results.metrics import METRICS

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.container import ErrorbarContainer
    from matplotlib.figure import Figure
    from matplotlib.transforms import Transform

FIGURE_SIZE_IN = (6.4, 4.0)
DPI = 200
INSTALL_HINT = "pip install matplotlib (the extra 'plot' of llenergymeasure)"
TITLE_CHARS, SUBTITLE_CHARS = 80, 115
DODGE_PT = 5.0  # horizontal shift between lines sharing an x value


def plot_campaign(comparison: Comparison, metric: str, x: str, path: Path) -> Path:
    """Write `campaign_figure` as PNG.

    Raises:
        ResultsError: unknown metric, or `x` is not a parameter that varies.
        LlemError: matplotlib is not installed.

    """
    return save_figure(campaign_figure(comparison, metric, x), path)


def campaign_figure(comparison: Comparison, metric: str, x: str) -> Figure:
    """The metric's mean against parameter `x`, with 95 % bootstrap intervals as error bars.

    Configurations that differ in other parameters become separate lines.

    Raises:
        ResultsError: unknown metric, or `x` is not a parameter that varies.
        LlemError: matplotlib is not installed.

    """
    if metric not in METRICS:
        raise ResultsError(f"--metric {metric}: not one of {', '.join(METRICS)}")
    if x not in comparison.parameter_names:
        varying = ", ".join(comparison.parameter_names) or "none"
        raise ResultsError(f"--x {x}: not a parameter that varies here (these do: {varying})")
    spec = METRICS[metric]
    fig = new_figure()
    ax = fig.subplots()
    positions, numeric = _x_positions([row.parameters[x] for row in comparison.rows], ax)
    series = _series(comparison, x)
    for i, (label, rows) in enumerate(series.items()):
        bars = _draw_series(ax, rows, metric, x, positions, label, f"C{i}")
        # Lines side by side at each x, so that their error bars do not hide each other;
        # categories are not joined by lines (nothing lies between them).
        for artist in bars.get_children():
            artist.set_transform(_dodge(ax, i, len(series)))
        if not numeric:
            bars.lines[0].set_linestyle("none")
    ax.set_xlabel(f"{x.rsplit('.', 1)[-1].replace('_', ' ')} ({x})")
    ax.set_ylabel(f"{spec.label} ({spec.unit})")
    ax.set_ylim(bottom=0)
    titles(
        fig,
        ax,
        f"{', '.join(comparison.model_names)} on {', '.join(comparison.devices)}",
        _campaign_subtitle(comparison),
    )
    finish_axes(ax)
    return fig


def plot_tradeoff(
    comparison: Comparison, metric: str, against: str, along: str, path: Path
) -> Path:
    """One metric against another: a point per configuration, a line along parameter `along`.

    The trade-off curve of a load sweep: J/token (`metric`) against p95 TTFT or
    throughput (`against`), each point a value of `along` (e.g. `load.rate_per_s`),
    labelled with it; configurations that differ in other parameters are other lines.
    Both axes carry their 95 % bootstrap intervals.

    Raises:
        ResultsError: unknown metric, or `along` is not a parameter that varies.

    """
    for name, option in ((metric, "--metric"), (against, "--against")):
        if name not in METRICS:
            raise ResultsError(f"{option} {name}: not one of {', '.join(METRICS)}")
    if along not in comparison.parameter_names:
        varying = ", ".join(comparison.parameter_names) or "none"
        raise ResultsError(f"--x {along}: not a parameter that varies here (these do: {varying})")
    curves = {
        label: sorted(
            (row.parameters[along], row.intervals[against], row.intervals[metric])
            for row in rows
            if row.intervals[against].mean is not None and row.intervals[metric].mean is not None
        )
        for label, rows in _series(comparison, along).items()
    }
    if not any(curves.values()):
        raise ResultsError(f"no configuration has both {metric} and {against}: nothing to plot")
    fig = new_figure()
    ax = fig.subplots()
    for i, (label, points) in enumerate(curves.items()):
        if not points:
            continue
        ax.errorbar(
            [x.mean for _, x, _ in points],
            [y.mean for _, _, y in points],
            xerr=_spreads([x for _, x, _ in points]),
            yerr=_spreads([y for _, _, y in points]),
            color=f"C{i}",
            marker="o",
            markersize=5,
            linewidth=1.4,
            capsize=3,
            label=label or "mean over cycles, 95 % bootstrap intervals",
        )
        for value, x, y in points:
            ax.annotate(
                str(value),
                (x.mean, y.mean),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    for axis, name in ((ax.set_xlabel, against), (ax.set_ylabel, metric)):
        axis(f"{METRICS[name].label} ({METRICS[name].unit})")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    titles(
        fig,
        ax,
        f"{', '.join(comparison.model_names)} on {', '.join(comparison.devices)}",
        f"labels: {along}; " + _campaign_subtitle(comparison),
    )
    finish_axes(ax)
    return save_figure(fig, path)


def _spreads(intervals: list[Interval]) -> list[list[float]]:
    """Distances below and above each mean, in matplotlib's error-bar form (0 if unknown)."""
    return [
        [i.mean - i.low if i.low is not None else 0.0 for i in intervals],
        [i.high - i.mean if i.high is not None else 0.0 for i in intervals],
    ]


def new_figure() -> Figure:
    """A figure of the paper size, or a one-line error when matplotlib is absent."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # the optional extra is not installed
        raise LlemError(f"llem plot and llem report need matplotlib: {INSTALL_HINT}") from None
    return Figure(figsize=FIGURE_SIZE_IN, dpi=DPI, layout="constrained")


def save_figure(fig: Figure, path: Path) -> Path:
    """Write the figure as PNG, atomically."""
    path = Path(path)
    with atomic_target(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    return path


def _series(comparison: Comparison, x: str) -> dict[str, list[ComparisonRow]]:
    """Rows grouped by the values of the other varying parameters."""
    others = [p for p in comparison.parameter_names if p != x]
    series: dict[str, list[ComparisonRow]] = {}
    for row in comparison.rows:
        label = ", ".join(
            f"{p.rsplit('.', 1)[-1]}={format_value(row.parameters[p])}" for p in others
        )
        series.setdefault(label, []).append(row)
    return series


def _draw_series(
    ax: Axes,
    rows: list[ComparisonRow],
    metric: str,
    x: str,
    positions: dict[str, float],
    label: str,
    color: str,
) -> ErrorbarContainer:
    points = sorted(
        (positions[repr(row.parameters[x])], row.intervals[metric])
        for row in rows
        if row.intervals[metric].mean is not None
    )
    xs = [p for p, _ in points]
    means = [i.mean for _, i in points]
    lower = [i.mean - i.low if i.low is not None else 0.0 for _, i in points]
    upper = [i.high - i.mean if i.high is not None else 0.0 for _, i in points]
    cycles = max((i.n for _, i in points), default=0)
    return ax.errorbar(
        xs,
        means,
        yerr=[lower, upper],
        color=color,
        marker="o",
        markersize=5,
        linewidth=1.4,
        capsize=4,
        label=label or f"mean of {cycles} cycles, 95 % bootstrap interval",
    )


def _dodge(ax: Axes, index: int, count: int) -> Transform:
    """Data coordinates shifted sideways, so that lines sharing an x keep their bars apart."""
    from matplotlib.transforms import ScaledTranslation

    shift_in = (index - (count - 1) / 2) * DODGE_PT / 72
    return ax.transData + ScaledTranslation(shift_in, 0, ax.figure.dpi_scale_trans)


def _x_positions(values: list[Any], ax: Axes) -> tuple[dict[str, float], bool]:
    """Numbers on a numeric axis (log 2 when they span a factor of 8 or more), else categories.

    Returns:
        The position of each value (by its repr), and whether the axis is numeric.

    """
    distinct = list(dict.fromkeys(values))
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in distinct)
    if numeric:
        positions = {repr(v): float(v) for v in distinct}
        if min(distinct) > 0 and max(distinct) / min(distinct) >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(positions.values()), [format_value(v) for v in sorted(distinct)])
        ax.minorticks_off()
        return positions, True
    ax.set_xticks(range(len(distinct)), [format_value(v) for v in distinct])
    ax.margins(x=0.25)
    return {repr(v): float(i) for i, v in enumerate(distinct)}, False


def _campaign_subtitle(comparison: Comparison) -> str:
    counts = sorted({len(row.experiment_ids) for row in comparison.rows})
    energy = (
        "energy: CPU estimate (TDP x utilisation), not measured"
        if comparison.energy_methods == ["estimate"]
        else f"energy: {', '.join(comparison.energy_methods)}"
    )
    if counts == [1]:
        return f"one cycle per configuration: means without intervals; {energy}"
    cycles = "/".join(map(str, counts))
    return f"mean and 95 % bootstrap interval over {cycles} cycles; {energy}"


def titles(fig: Figure, ax: Axes, title: str, subtitle: str) -> None:
    """The title above the axes, the subtitle (what the figure rests on) in small grey.

    Both carry names from the results (model, experiment id): a `$` in them is a dollar
    sign, not the start of matplotlib's math notation (which fails on unknown commands).
    """
    fig.suptitle(textwrap.fill(title, TITLE_CHARS), fontsize=10.5, parse_math=False)
    ax.set_title(
        textwrap.fill(subtitle, SUBTITLE_CHARS), fontsize=8, color="0.35", parse_math=False
    )


def finish_axes(ax: Axes) -> None:
    """A light grid behind the data, and the legend (its labels as plain text, see `titles`)."""
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    legend = ax.legend(fontsize=8, framealpha=0.9, edgecolor="0.8")
    for label in legend.get_texts():
        label.set_parse_math(False)
