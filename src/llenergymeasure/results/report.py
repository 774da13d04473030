"""`llem report`: one experiment as a self-contained HTML page.

The page answers, in order: what was asked (model, engine, deployment, workload), the
headline figures (each with its method and energy boundary, and the 95 % bootstrap
interval over the cycles of the same configuration found under the results root),
energy by boundary and component, the figures, the warnings with their remediations,
the environment, and how to reproduce the run (the command and the resolved config).

Figures are inline PNG and styles inline, with no script: the file opens offline.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from llenergymeasure.domain.energy import ComponentEnergy
from llenergymeasure.domain.environment import EnvironmentMetadata
from llenergymeasure.domain.experiment import (
    AggregatedResult,
    ExperimentManifest,
    RawProcessResult,
)
from llenergymeasure.errors import IncompleteExperiment, ResultsError
from llenergymeasure.fileio import atomic_write_bytes
from llenergymeasure.results.compare import METRICS, Interval, Sample, SampleSet, compare
from llenergymeasure.results.layout import ResultsLayout, locate_experiment, manifest_path
from llenergymeasure.results.report_figures import experiment_figures
from llenergymeasure.results.report_html import (
    Cell,
    Html,
    code,
    key_values,
    page,
    pre,
    section,
    table,
    tag,
)
from llenergymeasure.results.report_sections import (
    environment_tables,
    figures,
    number,
    plain,
    warnings_block,
)
from llenergymeasure.results.repository import list_experiments, load_experiment
from llenergymeasure.results.verification import check_completeness

REPORT_NAME = "report.html"


@dataclass(frozen=True)
class ExperimentTarget:
    """An experiment found from an id or a path: its results root and id."""

    layout: ResultsLayout
    experiment_id: str

    @property
    def experiment_dir(self) -> Path:
        """`<root>/raw/<id>`."""
        return self.layout.experiment_dir(self.experiment_id)

    @property
    def default_report_path(self) -> Path:
        """`<root>/raw/<id>/report.html`, beside the experiment's files."""
        return self.experiment_dir / REPORT_NAME


def find_experiment(id_or_path: str, results_dir: Path) -> ExperimentTarget:
    """An experiment named as every command names one (`locate_experiment`), with its files.

    Raises:
        ResultsError: nothing of that name or path holds an experiment manifest.

    """
    target = ExperimentTarget(*locate_experiment(id_or_path, results_dir))
    if not manifest_path(target.experiment_dir).is_file():
        raise ResultsError(
            f"{id_or_path}: no experiment there ({manifest_path(target.experiment_dir)} not "
            "found); pass an experiment directory, or an id with --results-dir"
        )
    return target


def experiment_report(target: ExperimentTarget) -> str:
    """The HTML page of one aggregated experiment.

    Raises:
        ResultsError: the experiment is not aggregated.
        IncompleteExperiment: no process result verifies.
        LlemError: matplotlib is not installed.

    """
    found = load_experiment(target.layout, target.experiment_id)
    result = found.aggregated
    if result is None:
        raise ResultsError(
            f"{target.experiment_id} is {found.manifest.status} and not aggregated; "
            f"run llem aggregate {target.experiment_dir}"
        )
    processes = check_completeness(target.experiment_dir, found.manifest).results
    if not processes:
        raise IncompleteExperiment(f"{target.experiment_dir}: no complete process result")
    manifest = found.manifest
    cycles = _cycles(target.layout, manifest)
    sections = [
        section("The question", question_table(manifest, result, processes)),
        section("Headline", *headline(result, cycles)),
        section("Energy by boundary and component", *energy_tables(result)),
        section("Figures", *figures(experiment_figures(result, processes, target.experiment_dir))),
        section("Warnings", warnings_block(result.warnings, result.aggregation.warnings)),
        section("Environment", environment_tables(result)),
        section("How to reproduce", *reproduce(manifest)),
    ]
    subtitle = (
        f"{result.model_name}; created {_when(result)}; status {manifest.status}; "
        f"{result.aggregation.num_processes} process(es) on {', '.join(result.hosts)}"
    )
    return page(f"llem report: {result.experiment_id}", subtitle, sections)


def write_report(document: str, path: Path) -> Path:
    """Write the page atomically."""
    atomic_write_bytes(Path(path), document.encode("utf-8"))
    return Path(path)


def question_table(
    manifest: ExperimentManifest, result: AggregatedResult, processes: Sequence[RawProcessResult]
) -> Html:
    """Model, engine, deployment and workload, as configured and as run."""
    config = manifest.config
    model, prompts, generation = (config.get(k, {}) for k in ("model", "prompts", "generation"))
    first = processes[0]
    env = next(iter(result.environments.values()), None)
    decoding = "sampling" if generation.get("do_sample") else "greedy"
    return key_values(
        [
            ("model", f"{result.model_name} (source: {first.model_source or 'not recorded'})"),
            ("engine", _engine(first.engine or config.get("engine"), env)),
            ("devices", ", ".join(sorted({p.device or "not recorded" for p in processes}))),
            ("processes", result.aggregation.processes_label),
            ("dtype", f"{first.dtype or 'not recorded'} (configured: {model.get('dtype')})"),
            ("batch size", plain(generation.get("batch_size"))),
            ("prompts", f"{prompts.get('source')}, {result.num_requests} requests"),
            ("max new tokens", f"{generation.get('max_new_tokens')} ({decoding} decoding)"),
            ("load", plain(config.get("load", {}).get("mode"))),
            ("tokens in / out", f"{result.input_tokens:,} / {result.output_tokens:,}"),
            ("energy window", number(result.wall_window_s, "s")),
        ]
    )


def headline(result: AggregatedResult, cycles: dict[str, Interval] | None) -> list[Cell]:
    """The key figures with their basis, and the interval over cycles where there are any."""
    energy = result.energy_breakdown
    intro = (
        f"The last column is the mean over the {max(i.n for i in cycles.values())} completed "
        "cycles of this configuration (same config hash) under the results root, with its "
        "95 % percentile-bootstrap interval."
        if cycles
        else "This configuration has one completed cycle under the results root, so there "
        "is no interval: repeat it (a campaign with cycles: 5 or more) for one."
    )
    boundary = f"{result.energy_method}, boundary {energy.boundary if energy else 'n/a'}"
    rows: list[list[Cell]] = [
        ["energy (raw)", number(energy.raw_j if energy else None, "J"), boundary, ""],
        ["energy above idle", number(energy.adjusted_j if energy else None, "J"), boundary, ""],
        ["baseline power", _baseline(result), _baseline_basis(result), ""],
    ]
    for name, metric in METRICS.items():
        value = metric.read(result)
        interval = cycles.get(name) if cycles else None
        rows.append(
            [
                metric.label,
                number(value, metric.unit, 4 if "J" in metric.unit else 2),
                _basis(name, result),
                _interval(interval, metric.unit),
            ]
        )
    header = ["figure", "this experiment", "method and boundary", "over cycles, 95 % interval"]
    if not cycles:
        header, rows = header[:3], [r[:3] for r in rows]
    return [tag("p", intro, "note"), table(header, rows, numeric={1, 3})]


def energy_tables(result: AggregatedResult) -> list[Cell]:
    """Every boundary (raw, above idle, per token) and every component with its baseline."""
    boundaries = table(
        ["boundary", "components", "energy", "above idle", "per output token", "note"],
        [
            [
                b.name,
                ", ".join(b.components) or "none",
                number(b.energy_j, "J"),
                number(b.above_idle_j, "J"),
                number(b.energy_per_output_token_j, "J/token", 4),
                "; ".join(
                    [
                        *([b.note] if b.note else []),
                        *(
                            [f"not measured here: {', '.join(b.unmeasured)}"]
                            if b.unmeasured
                            else []
                        ),
                    ]
                ),
            ]
            for b in result.energy_boundaries
        ],
        numeric={2, 3, 4},
    )
    components = table(
        ["component", "method", "scope", "devices", "energy", "idle baseline", "above idle"],
        [_component_row(c) for c in result.energy_components],
        numeric={4, 6},
    )
    return [boundaries, components]


def reproduce(manifest: ExperimentManifest) -> list[Cell]:
    """The command as it was run, and the resolved config to run again."""
    command = shlex.join(_as_llem(manifest.launch_command)) if manifest.launch_command else None
    versions = ", ".join(f"{k} {v}" for k, v in manifest.versions.items() if v)
    name = manifest.config.get("name", "config")
    return [
        tag("p", "The command that ran it:"),
        pre(command or "not recorded"),
        Html(
            f"<p>To run it again, save the resolved config below as {code(f'{name}.yaml')} "
            f"and run {code(f'llem run {name}.yaml')}. "
            f"Versions: {tag('span', versions or 'not recorded')}; "
            f"config hash {code(manifest.config_hash)}.</p>"
        ),
        pre(yaml.safe_dump(manifest.config, sort_keys=False, allow_unicode=True)),
    ]


def _as_llem(argv: list[str]) -> list[str]:
    """The recorded command line, its program shown as `llem` where it was llem itself."""
    if argv and Path(argv[0]).name in ("llem", "__main__.py"):
        return ["llem", *argv[1:]]
    return argv


def _cycles(layout: ResultsLayout, manifest: ExperimentManifest) -> dict[str, Interval] | None:
    """Each metric's interval over the completed experiments of this config hash."""
    samples = [
        Sample(e.manifest, e.aggregated)
        for e in list_experiments(layout)
        if e.aggregated is not None
        and e.manifest.status == "completed"
        and e.manifest.config_hash == manifest.config_hash
    ]
    if len(samples) < 2:
        return None
    (row,) = compare(SampleSet(samples, [], [])).rows
    return row.intervals


def _interval(interval: Interval | None, unit: str) -> str:
    if interval is None or interval.mean is None:
        return ""
    if interval.low is None or interval.high is None:
        return f"{number(interval.mean, unit, 4)} (1 cycle measured it)"
    return (
        f"{interval.mean:,.4g} [{interval.low:,.4g}, {interval.high:,.4g}] {unit}, n={interval.n}"
    )


def _basis(name: str, result: AggregatedResult) -> str:
    """How a headline metric was obtained."""
    energy = result.energy_breakdown
    boundary = energy.boundary if energy else "n/a"
    if name in ("energy_per_output_token_j", "tokens_per_joule"):
        return (
            f"raw energy, {result.energy_method}, boundary {boundary}, "
            f"{result.output_tokens:,} output tokens"
        )
    if name == "total_tokens_per_second":
        return "all output tokens over the wall window (first start to last end)"
    requests = result.latency.num_requests if result.latency else None
    return f"percentile of the pooled per-request samples ({requests or 'n/a'} requests)"


def _baseline(result: AggregatedResult) -> str:
    energy = result.energy_breakdown
    if energy is None or energy.baseline_power_w is None:
        return "n/a"
    spread = f" ± {energy.baseline_std_w:.2f}" if energy.baseline_std_w is not None else ""
    return f"{energy.baseline_power_w:,.2f}{spread} W"


def _baseline_basis(result: AggregatedResult) -> str:
    energy = result.energy_breakdown
    method = energy.baseline_method if energy else "unavailable"
    return f"idle power before the run ({method}); ± one standard deviation of its readings"


def _component_row(c: ComponentEnergy) -> list[Cell]:
    baseline = (
        "unavailable"
        if c.baseline_power_w is None
        else f"{c.baseline_power_w:,.2f} W x {c.window_s:.2f} s ({c.baseline_method}"
        f"{', ' + c.baseline_source if c.baseline_source else ''})"
    )
    above = number(c.above_idle_j, "J") + (" (clipped at 0)" if c.above_idle_clipped else "")
    return [
        c.component,
        c.method,
        c.scope,
        ", ".join(c.device_ids),
        number(c.energy_j, "J"),
        baseline,
        above,
    ]


def _engine(engine: str | None, env: EnvironmentMetadata | None) -> str:
    """The engine recorded, and the library versions its host ran."""
    versions = (
        f"PyTorch {env.torch_version or 'n/a'}, transformers {env.transformers_version or 'n/a'}"
        if env is not None
        else "versions not recorded"
    )
    return f"{engine or 'not recorded'} ({versions})"


def _when(result: AggregatedResult) -> str:
    moment = result.created_at or result.aggregated_at
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if moment else "n/a"
