"""The figures of a report, drawn by `results.plots` and inlined as base64 PNG.

A figure that cannot be drawn from what the experiment recorded (no power readings
on a CPU run) is not invented: the report shows the reason in its place.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from llenergymeasure.domain.experiment import AggregatedResult, RawProcessResult
from llenergymeasure.errors import ResultsError
from llenergymeasure.results.compare import METRICS, Comparison, device_name
from llenergymeasure.results.plots import campaign_figure, finish_axes, new_figure, titles
from llenergymeasure.results.power_plot import power_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_DPI = 150  # 960 x 600 pixels: sharp on screen, small enough to inline
CAMPAIGN_METRICS = ("energy_per_output_token_j", "total_tokens_per_second")
MAX_CAMPAIGN_AXES = 3


@dataclass(frozen=True)
class ReportFigure:
    """A drawn figure (`data_uri`) or the reason it is absent (`missing`), and its caption."""

    title: str
    caption: str
    data_uri: str | None = None
    missing: str | None = None


def png_data_uri(fig: Figure) -> str:
    """The figure as a `data:image/png;base64,` URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=REPORT_DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def experiment_figures(
    result: AggregatedResult, processes: Sequence[RawProcessResult], experiment_dir: Path
) -> list[ReportFigure]:
    """Power over time per GPU (or why there is none) and energy by boundary."""
    power_caption = (
        "Power of each GPU from the time-series sidecars, in seconds from the start of the "
        "energy window (shaded); dashed: each GPU's idle baseline, the power subtracted for "
        "the energy above idle."
    )
    try:
        power = ReportFigure(
            "Power over time",
            power_caption,
            png_data_uri(power_figure(result, processes, experiment_dir)),
        )
    except ResultsError as exc:
        power = ReportFigure("Power over time", power_caption, missing=str(exc))
    return [power, energy_by_boundary(result)]


def energy_by_boundary(result: AggregatedResult) -> ReportFigure:
    """Each measured boundary's joules, split into the idle baseline and the rest."""
    caption = (
        "Energy of each boundary over the energy window: the idle baseline (baseline power "
        "x window) and the energy above it. A boundary whose components were not all "
        "measured is left out."
    )
    drawn = [b for b in result.energy_boundaries if b.energy_j is not None]
    if not drawn:
        return ReportFigure(
            "Energy by boundary", caption, missing="no boundary has a measured energy"
        )
    fig = new_figure()
    ax = fig.subplots()
    names = [b.name for b in drawn]
    above = [b.above_idle_j if b.above_idle_j is not None else 0.0 for b in drawn]
    idle = [b.energy_j - a for b, a in zip(drawn, above, strict=True)]
    ax.barh(names, idle, color="0.75", label="idle baseline")
    ax.barh(names, above, left=idle, color="C0", label="above idle")
    for y, boundary in enumerate(drawn):
        ax.annotate(
            f" {boundary.energy_j:,.2f} J",
            (boundary.energy_j, y),
            va="center",
            fontsize=8,
            annotation_clip=False,
        )
    ax.invert_yaxis()
    ax.set_xlabel("energy (J)")
    ax.margins(x=0.15)
    titles(
        fig,
        ax,
        f"Energy by boundary: {result.model_name} on {device_name(result)}",
        f"{result.experiment_id}; energy: {result.energy_method}; "
        f"window {result.wall_window_s:.2f} s",
    )
    finish_axes(ax)
    return ReportFigure("Energy by boundary", caption, png_data_uri(fig))


def campaign_figures(comparison: Comparison) -> list[ReportFigure]:
    """Energy per token against each swept parameter, and throughput against the first."""
    axes = comparison.parameter_names[:MAX_CAMPAIGN_AXES]
    wanted = [(CAMPAIGN_METRICS[0], x) for x in axes] + [(CAMPAIGN_METRICS[1], x) for x in axes[:1]]
    return [
        ReportFigure(
            f"{METRICS[metric].label} against {x}",
            f"Mean over the cycles of each configuration, error bars the 95 % bootstrap "
            f"interval of the mean; configurations that differ in another parameter are "
            f"separate lines ({METRICS[metric].unit}).",
            png_data_uri(campaign_figure(comparison, metric, x)),
        )
        for metric, x in wanted
    ]
