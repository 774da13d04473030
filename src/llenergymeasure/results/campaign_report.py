"""`llem report --campaign NAME`: a campaign as a self-contained HTML page.

The comparison is that of `llem results compare` (`results.compare`): one row per
configuration, each metric's mean over its cycles with the 95 % percentile-bootstrap
interval; the figures are those of `llem plot campaign`. The rest follows the experiment
report: the question, warnings with their remediations, the environment, how to rerun.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

from llenergymeasure.config.campaign import format_value
from llenergymeasure.domain.campaign import CampaignManifest
from llenergymeasure.domain.metrics import MeasurementWarning
from llenergymeasure.results.campaigns import campaign_dir, read_campaign_manifest
from llenergymeasure.results.compare import (
    METRICS,
    Comparison,
    ComparisonRow,
    Sample,
    compare,
    flatten_config,
    load_campaign_samples,
)
from llenergymeasure.results.layout import ResultsLayout
from llenergymeasure.results.report import REPORT_NAME
from llenergymeasure.results.report_figures import campaign_figures
from llenergymeasure.results.report_html import (
    Cell,
    Html,
    code,
    details,
    join,
    key_values,
    page,
    pre,
    section,
    table,
    tag,
    text,
)
from llenergymeasure.results.report_sections import (
    environment_tables,
    figures,
    number,
    plain,
    warnings_block,
)

TABLE_METRICS = (
    "energy_per_output_token_j",
    "total_tokens_per_second",
    "tokens_per_joule",
    "ttft_p50_ms",
    "itl_p50_ms",
)
NO_FIGURE = tag("p", "No parameter varies between the configurations: nothing to plot.", "note")
FIXED_FIELDS = (
    "model.name",
    "engine",
    "model.dtype",
    "processes",
    "generation.batch_size",
    "generation.max_new_tokens",
    "generation.do_sample",
    "prompts.source",
    "prompts.num_prompts",
    "load.mode",
)


def default_report_path(layout: ResultsLayout, campaign_name: str) -> Path:
    """`<root>/campaigns/<name>/report.html`, beside the campaign's manifest."""
    return campaign_dir(layout.root, campaign_name) / REPORT_NAME


def campaign_report(layout: ResultsLayout, campaign_name: str, *, seed: int = 0) -> str:
    """The HTML page of a campaign's completed experiments.

    Raises:
        ResultsError: no such campaign, or none of its experiments completed.
        LlemError: matplotlib is not installed.

    """
    manifest = read_campaign_manifest(layout.root, campaign_name)
    sample_set = load_campaign_samples(layout, campaign_name)
    comparison = compare(sample_set, seed=seed)
    samples = sample_set.samples
    sections = [
        section("The question", question_table(manifest, comparison, samples)),
        section("Headline", *comparison_table(comparison, samples)),
        section("Figures", *(figures(campaign_figures(comparison)) or [NO_FIGURE])),
        section("Experiments", entries_table(manifest)),
        section("Warnings", *campaign_warnings(samples, comparison.notes)),
        section(
            "Environment",
            tag("p", f"As recorded by {samples[0].manifest.experiment_id}.", "note"),
            environment_tables(samples[0].result),
        ),
        section("How to reproduce", *reproduce(manifest, comparison, samples)),
    ]
    done = sum(e.status == "completed" for e in manifest.entries)
    subtitle = (
        f"{', '.join(comparison.model_names)} on {', '.join(comparison.devices)}; "
        f"{len(comparison.rows)} configurations, {done} of {len(manifest.entries)} "
        f"experiments completed; updated {manifest.updated_at:%Y-%m-%d %H:%M:%S}"
    )
    return page(f"llem report: campaign {manifest.campaign_name}", subtitle, sections)


def question_table(
    manifest: CampaignManifest, comparison: Comparison, samples: list[Sample]
) -> Html:
    """What is swept over which values, and what every configuration shares."""
    flat = flatten_config(samples[0].manifest.config)
    rows = comparison.rows
    swept = [
        (f"swept: {p}", ", ".join(dict.fromkeys(format_value(r.parameters[p]) for r in rows)))
        for p in comparison.parameter_names
    ]
    fixed = [(p, plain(flat.get(p))) for p in FIXED_FIELDS if p not in comparison.parameter_names]
    return key_values(
        [
            ("campaign", manifest.campaign_name),
            ("devices", ", ".join(comparison.devices)),
            ("energy method", ", ".join(comparison.energy_methods)),
            *swept,
            *fixed,
            ("cycles", f"{manifest.cycles} per configuration, order {manifest.order}"),
        ]
    )


def comparison_table(comparison: Comparison, samples: list[Sample]) -> list[Cell]:
    """One row per configuration: its parameters, each metric's mean and interval."""
    boundaries = _boundaries(samples)
    header = [
        "configuration",
        *comparison.parameter_names,
        "cycles",
        *(f"{METRICS[m].label} ({METRICS[m].unit})" for m in TABLE_METRICS),
        "energy / token vs best",
        "method, boundary",
    ]
    rows = [
        [
            row.label,
            *(format_value(row.parameters[p]) for p in comparison.parameter_names),
            str(len(row.experiment_ids)),
            *(_interval(row, m) for m in TABLE_METRICS),
            number(row.ratio_to_best, "x"),
            f"{', '.join(row.energy_methods)}, {boundaries.get(row.config_hash, 'n/a')}",
        ]
        for row in comparison.rows
    ]
    first_metric = 2 + len(comparison.parameter_names)
    numeric = set(range(first_metric - 1, first_metric + len(TABLE_METRICS) + 1))
    intro = tag(
        "p",
        "Each cell: the mean over the configuration's cycles, in brackets its 95 % "
        "percentile-bootstrap interval (none with one cycle; with few cycles it is narrower "
        "than the true interval, five or more are advised).",
        "note",
    )
    notes = [tag("p", n, "note") for n in comparison.notes]
    return [intro, table(header, rows, numeric), *notes]


def entries_table(manifest: CampaignManifest) -> Html:
    """Every planned experiment in run order, with its status and error."""
    return table(
        ["#", "configuration", "cycle", "status", "experiment id", "error"],
        [
            [
                str(e.index + 1),
                e.config_name,
                str(e.cycle),
                e.status,
                e.experiment_id,
                e.error or "",
            ]
            for e in manifest.entries
        ],
        numeric={0, 2},
    )


def campaign_warnings(samples: list[Sample], notes: list[str]) -> list[Cell]:
    """Each warning code once, with how many experiments raised it."""
    counts = Counter(w.code for s in samples for w in s.result.warnings)
    first: dict[str, MeasurementWarning] = {}
    for sample in samples:
        for warning in sample.result.warnings:
            first.setdefault(warning.code, warning)
    intro = tag(
        "p",
        "Each warning once, with the message of its first experiment; the count says how "
        f"many of the {len(samples)} experiments raised it.",
        "note",
    )
    listed = [
        w.model_copy(
            update={"message": f"({counts[w.code]} of {len(samples)}) {w.message}", "processes": []}
        )
        for w in first.values()
    ]
    return [intro, warnings_block(listed, [])]


def reproduce(
    manifest: CampaignManifest, comparison: Comparison, samples: list[Sample]
) -> list[Cell]:
    """The command, and each configuration's resolved config."""
    by_hash = {s.manifest.config_hash: s.manifest for s in samples}
    configs = [
        details(
            f"{row.label}: resolved config",
            pre(
                yaml.safe_dump(by_hash[row.config_hash].config, sort_keys=False, allow_unicode=True)
            ),
        )
        for row in comparison.rows
    ]
    return [
        Html(
            f"<p>The campaign file was {code(manifest.campaign_file)}. Run it again with "
            f"{code(f'llem campaign {manifest.campaign_file}')} (a new campaign name keeps these "
            "results apart), or finish this one with "
            f"{code(f'llem campaign {manifest.campaign_file} --resume')}.</p>"
        ),
        *configs,
    ]


def _interval(row: ComparisonRow, metric: str) -> Cell:
    """The mean, and below it the interval (or `1 cycle`)."""
    interval = row.intervals[metric]
    digits = 4 if METRICS[metric].unit.startswith("J") else 2
    if interval.mean is None:
        return None
    if interval.low is None or interval.high is None:
        bounds = f"{interval.n} cycle"
    else:
        bounds = f"[{number(interval.low, digits=digits)}, {number(interval.high, digits=digits)}]"
    return join([text(number(interval.mean, digits=digits)), Html("<br>"), tag("small", bounds)])


def _boundaries(samples: list[Sample]) -> dict[str, str]:
    """The headline energy boundary of each configuration (by config hash)."""
    found: dict[str, set[str]] = {}
    for sample in samples:
        energy = sample.result.energy_breakdown
        found.setdefault(sample.manifest.config_hash, set()).add(
            (energy.boundary if energy else None) or "n/a"
        )
    return {h: "/".join(sorted(b)) for h, b in found.items()}
