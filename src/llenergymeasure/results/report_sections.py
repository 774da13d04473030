"""Sections that the experiment and the campaign reports share: figures, warnings, hosts."""

from __future__ import annotations

from collections.abc import Sequence

from llenergymeasure.domain.experiment import AggregatedResult
from llenergymeasure.domain.metrics import MeasurementWarning
from llenergymeasure.results.report_figures import ReportFigure
from llenergymeasure.results.report_html import (
    Cell,
    Html,
    figure,
    join,
    key_values,
    table,
    tag,
    text,
)


def figures(drawn: Sequence[ReportFigure]) -> list[Cell]:
    """Each figure, or a note saying why it is absent."""
    parts: list[Cell] = []
    for item in drawn:
        parts.append(tag("h3", item.title))
        if item.data_uri is not None:
            parts.append(figure(item.data_uri, item.title, item.caption))
        else:
            parts.append(tag("p", f"Not drawn: {item.missing}", "note"))
    return parts


def warnings_block(warnings: Sequence[MeasurementWarning], notes: Sequence[str]) -> Html:
    """Each warning with the processes it concerns and what to do about it."""
    if not warnings and not notes:
        return tag("p", "No warnings.")
    items = [
        Html(
            '<div class="warning">'
            f"{tag('b', w.code)}{text(_processes_of(w))}: {tag('span', w.message)}"
            f"<br>{tag('i', 'what to do: ')}{tag('span', w.remediation)}</div>"
        )
        for w in warnings
    ]
    items += [
        Html(f'<div class="warning">{tag("b", "aggregation")}: {tag("span", n)}</div>')
        for n in notes
    ]
    return join(items)


def environment_tables(result: AggregatedResult) -> Html:
    """Per host: system, software, and each GPU."""
    parts = []
    for host, env in result.environments.items():
        parts.append(tag("h3", host))
        parts.append(
            key_values(
                [
                    ("os", env.os),
                    ("cpu", f"{env.cpu_model or 'n/a'} x{env.cpu_count or '?'}"),
                    ("cpu governor", env.cpu_governor),
                    ("memory", number(env.memory_total_mb, "MB", 0)),
                    ("container", plain(env.in_container)),
                    ("cuda", env.cuda_version if env.cuda_available else "unavailable"),
                    ("driver", env.driver_version),
                    ("python / torch", f"{env.python_version} / {env.torch_version}"),
                    (
                        "transformers / accelerate",
                        f"{env.transformers_version} / {env.accelerate_version}",
                    ),
                    ("llenergymeasure", env.llenergymeasure_version),
                ]
            )
        )
        if env.gpus:
            parts.append(
                table(
                    ["index", "name", "uuid", "memory", "power limit", "MIG"],
                    [
                        [
                            str(g.index),
                            g.name,
                            g.uuid,
                            number(g.vram_mb, "MB", 0),
                            number(g.power_limit_w, "W", 0),
                            plain(g.is_mig),
                        ]
                        for g in env.gpus
                    ],
                    numeric={3, 4},
                )
            )
    return join(parts) if parts else tag("p", "No environment was recorded.")


def number(value: float | None, unit: str = "", digits: int = 2) -> str:
    """A number with its unit, or `n/a` where it was not measured."""
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}{' ' + unit if unit else ''}"


def _processes_of(warning: MeasurementWarning) -> str:
    if not warning.processes:
        return ""
    listed = ", ".join(str(i) for i in warning.processes)
    return f" (process {listed})" if len(warning.processes) == 1 else f" (processes {listed})"


def plain(value: object) -> str | None:
    """A config or environment value as text: yes/no for a flag, None kept (n/a)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
