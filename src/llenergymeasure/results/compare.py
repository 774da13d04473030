"""Compare configurations: per metric, the mean over cycles with a 95 % bootstrap interval.

Experiments with the same config hash (`experiment.json`) are cycles of one
configuration and make one row. Per row and metric:
- mean: the arithmetic mean of the cycles' values (a cycle that did not measure the
  metric is left out, never counted as 0);
- interval: the percentile bootstrap of that mean. `resamples` times, draw n values
  with replacement from the n cycles and take their mean; the interval is the 2.5th and
  97.5th percentiles of those means (numpy's linear interpolation). The generator is
  `numpy.random.default_rng(seed)`, made afresh for every row and metric, so a row's
  interval does not depend on the other rows and the same data give the same table.
  With one cycle there is no interval (null). With few cycles the percentile bootstrap
  is narrower than the true 95 % interval (with 2 cycles it cannot be wider than the
  two values); five or more cycles are advised for figures that will be published.
- ratio to the best row: the row's mean energy per output token over the lowest mean
  energy per output token of the table (the best row has 1.00).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llenergymeasure.domain.experiment import AggregatedResult, ExperimentManifest
from llenergymeasure.errors import ResultsError
from llenergymeasure.fileio import atomic_write_bytes
from llenergymeasure.results.campaigns import read_campaign_manifest
from llenergymeasure.results.exporters import csv_cell
from llenergymeasure.results.layout import ResultsLayout
from llenergymeasure.results.repository import load_experiment

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 10_000
RANKING_METRIC = "energy_per_output_token_j"
# Warnings that say other work is in an experiment's energy: named in every comparison.
CONTENTION_CODES = ("host_contention", "gpu_shared", "baseline_host_busy")


@dataclass(frozen=True)
class Metric:
    """A figure of an experiment, how it is labelled and where it is read."""

    label: str
    unit: str
    read: Callable[[AggregatedResult], float | None]


def _tokens_per_joule(result: AggregatedResult) -> float | None:
    energy = result.energy_breakdown
    if energy is None or not energy.raw_j:
        return None
    return result.output_tokens / energy.raw_j


def _latency(name: str) -> Callable[[AggregatedResult], float | None]:
    return lambda r: getattr(r.latency, name) if r.latency is not None else None


def _goodput_token_share(result: AggregatedResult) -> float | None:
    """Share of output tokens from requests that met `load.slo`; None without a load SLO."""
    good = result.load.goodput if result.load is not None else None
    if good is None or not good.output_tokens:
        return None
    return good.good_output_tokens / good.output_tokens


METRICS: dict[str, Metric] = {
    "energy_per_output_token_j": Metric(
        "energy / output token", "J/token", lambda r: r.energy_per_output_token_j
    ),
    "total_tokens_per_second": Metric("throughput", "tok/s", lambda r: r.total_tokens_per_second),
    "tokens_per_joule": Metric("output tokens / joule", "tok/J", _tokens_per_joule),
    "padding_share": Metric(
        "padded prompt positions / prompt tokens",
        "ratio",
        lambda r: r.padding.padding_share if r.padding is not None else None,
    ),
    "ttft_p50_ms": Metric("TTFT p50", "ms", _latency("ttft_p50_ms")),
    "ttft_p95_ms": Metric("TTFT p95", "ms", _latency("ttft_p95_ms")),
    "itl_p50_ms": Metric("ITL p50", "ms", _latency("itl_p50_ms")),
    "itl_p95_ms": Metric("ITL p95", "ms", _latency("itl_p95_ms")),
    "goodput_token_share": Metric("goodput (share of tokens)", "fraction", _goodput_token_share),
}


@dataclass(frozen=True)
class Interval:
    """Mean over n cycles and its bootstrap interval (None with fewer than 2 values)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class Sample:
    """One experiment: one cycle of its configuration."""

    manifest: ExperimentManifest
    result: AggregatedResult


@dataclass(frozen=True)
class SampleSet:
    """Experiments to compare, notes on those left out, and the parameters to list first."""

    samples: list[Sample]
    notes: list[str]
    parameter_order: list[str]


@dataclass(frozen=True)
class ComparisonRow:
    """One configuration: its varying parameters and each metric's interval."""

    label: str
    config_hash: str
    parameters: dict[str, Any]
    experiment_ids: list[str]
    energy_methods: list[str]
    intervals: dict[str, Interval]
    ratio_to_best: float | None
    warning_codes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    """The table: rows in order, the parameters that vary, what the numbers rest on."""

    rows: list[ComparisonRow]
    parameter_names: list[str]
    energy_methods: list[str]
    model_names: list[str]
    devices: list[str]
    notes: list[str]


def bootstrap_mean_ci(
    values: Sequence[float | None],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean and percentile-bootstrap interval of the mean (see the module doc)."""
    import numpy as np

    data = np.asarray([v for v in values if v is not None], dtype=float)
    if data.size == 0:
        return Interval(None, None, None, 0)
    mean = float(data.mean())
    if data.size == 1:
        return Interval(mean, None, None, 1)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail_pct = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail_pct, 100 - tail_pct])
    return Interval(mean, float(low), float(high), int(data.size))


def load_experiment_samples(layout: ResultsLayout, experiment_ids: Sequence[str]) -> SampleSet:
    """The aggregated experiments named, in that order.

    Raises:
        ResultsError: an experiment is missing or not aggregated.

    """
    samples = []
    for experiment_id in dict.fromkeys(experiment_ids):
        found = load_experiment(layout, experiment_id)
        if found.aggregated is None:
            raise ResultsError(
                f"{experiment_id} is {found.manifest.status} and not aggregated; "
                f"run llem aggregate {layout.experiment_dir(experiment_id)}"
            )
        samples.append(Sample(found.manifest, found.aggregated))
    return SampleSet(samples, [], [])


def load_campaign_samples(layout: ResultsLayout, campaign_name: str) -> SampleSet:
    """The completed experiments of a campaign, by configuration then cycle; notes on the rest.

    The parameters are listed in the order of the campaign's sweep axes.
    """
    manifest = read_campaign_manifest(layout.root, campaign_name)
    entries = sorted(manifest.entries, key=lambda e: (e.configuration, e.cycle))
    samples, notes = [], []
    for entry in entries:
        if entry.status != "completed" or entry.experiment_id is None:
            notes.append(f"{entry.config_name} cycle {entry.cycle} is {entry.status}: left out")
            continue
        found = load_experiment(layout, entry.experiment_id)
        if found.aggregated is None:
            notes.append(f"{entry.experiment_id} is not aggregated: left out")
            continue
        samples.append(Sample(found.manifest, found.aggregated))
    if not samples:
        raise ResultsError(f"campaign {campaign_name} has no completed experiment to compare")
    order = list(dict.fromkeys(path for e in entries for path in e.overrides))
    return SampleSet(samples, notes, order)


def compare(
    sample_set: SampleSet, *, seed: int = 0, resamples: int = DEFAULT_RESAMPLES
) -> Comparison:
    """Group the samples by config hash (rows in order of first appearance) and summarise."""
    samples = sample_set.samples
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(sample.manifest.config_hash, []).append(sample)
    varying = varying_parameters([g[0].manifest.config for g in groups.values()])
    first = [p for p in sample_set.parameter_order if p in varying]
    varying = first + [p for p in varying if p not in first]
    rows = [_row(group, varying, seed, resamples) for group in groups.values()]
    rows = _with_ratios(rows)
    methods = sorted({s.result.energy_method for s in samples})
    return Comparison(
        rows=rows,
        parameter_names=varying,
        energy_methods=methods,
        model_names=sorted({s.result.model_name for s in samples}),
        devices=sorted({device_name(s.result) for s in samples}),
        notes=[*sample_set.notes, *_method_notes(methods), *_contention_notes(samples)],
    )


def varying_parameters(configs: Sequence[dict[str, Any]]) -> list[str]:
    """Dotted paths whose values differ between the configs (the name left aside)."""
    flat = [flatten_config(c) for c in configs]
    paths = dict.fromkeys(path for f in flat for path in f if path != "name")
    return [p for p in paths if len({repr(f.get(p)) for f in flat}) > 1]


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{generation: {batch_size: 4}}` -> `{generation.batch_size: 4}`."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat |= flatten_config(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def device_name(result: AggregatedResult) -> str:
    """`NVIDIA H100 80GB HBM3 x2`, or the CPU model and its cores where there is no GPU."""
    gpus = [g for env in result.environments.values() for g in env.gpus]
    if gpus:
        return gpus[0].name + (f" x{len(gpus)}" if len(gpus) > 1 else "")
    env = next(iter(result.environments.values()), None)
    if env is None or env.cpu_model is None:
        return "CPU"
    model = " ".join(re.sub(r"\((R|TM)\)", "", env.cpu_model).split())
    return f"{model} ({env.cpu_count} CPU cores)" if env.cpu_count else model


def write_comparison_csv(comparison: Comparison, path: Path) -> Path:
    """One row per configuration: parameters, then each metric's mean and interval."""
    columns = [
        "configuration",
        "config_hash",
        *comparison.parameter_names,
        "cycles",
        "energy_method",
        *(f"{m}_{part}" for m in METRICS for part in ("mean", "ci95_low", "ci95_high")),
        "energy_ratio_to_best",
        "warnings",
        "experiment_ids",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in comparison.rows:
        cells: dict[str, Any] = {
            "configuration": row.label,
            "config_hash": row.config_hash,
            **row.parameters,
            "cycles": len(row.experiment_ids),
            "energy_method": ";".join(row.energy_methods),
            "energy_ratio_to_best": row.ratio_to_best,
            "warnings": ";".join(row.warning_codes),
            "experiment_ids": ";".join(row.experiment_ids),
        }
        for name, interval in row.intervals.items():
            cells |= {
                f"{name}_mean": interval.mean,
                f"{name}_ci95_low": interval.low,
                f"{name}_ci95_high": interval.high,
            }
        writer.writerow({column: csv_cell(value) for column, value in cells.items()})
    atomic_write_bytes(Path(path), buffer.getvalue().encode("utf-8"))
    return Path(path)


def _row(group: list[Sample], varying: list[str], seed: int, resamples: int) -> ComparisonRow:
    flat = flatten_config(group[0].manifest.config)
    return ComparisonRow(
        label=group[0].result.config_name,
        config_hash=group[0].manifest.config_hash,
        parameters={path: flat.get(path) for path in varying},
        experiment_ids=[s.manifest.experiment_id for s in group],
        energy_methods=sorted({s.result.energy_method for s in group}),
        intervals={
            name: bootstrap_mean_ci(
                [metric.read(s.result) for s in group], resamples=resamples, seed=seed
            )
            for name, metric in METRICS.items()
        },
        ratio_to_best=None,
        warning_codes=sorted({w.code for s in group for w in s.result.warnings}),
    )


def _contention_notes(samples: list[Sample]) -> list[str]:
    """Experiments whose energy includes other work on their host or GPU, named."""
    return [
        f"{s.manifest.experiment_id}: {w.code}: {w.message}"
        for s in samples
        for w in s.result.warnings
        if w.code in CONTENTION_CODES
    ]


def _with_ratios(rows: list[ComparisonRow]) -> list[ComparisonRow]:
    means = [r.intervals[RANKING_METRIC].mean for r in rows]
    present = [m for m in means if m is not None and m > 0]
    if not present:
        return rows
    best = min(present)
    return [
        replace(row, ratio_to_best=None if m is None else m / best)
        for row, m in zip(rows, means, strict=True)
    ]


def _method_notes(methods: list[str]) -> list[str]:
    notes = []
    if len(methods) > 1:
        notes.append(
            f"rows measured energy by different methods ({', '.join(methods)}): "
            "their energy figures are not comparable"
        )
    if "estimate" in methods:
        notes.append(
            "energy is the CPU estimate (TDP x CPU utilisation), a model, not a measurement"
        )
    return notes
