"""`llem campaign FILE [--dry-run] [--resume]`: a campaign with overall progress and ETA."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    Progress,
    ProgressColumn,
    Task,
)
from rich.table import Table
from rich.text import Text

from llenergymeasure.cli.console import (
    console,
    enable_logging,
    err_console,
    progress_bars,
    quiet_third_party,
)
from llenergymeasure.cli.metrics import (
    METRICS_HOST,
    METRICS_PORT,
    check_metrics_options,
    live_metrics,
)
from llenergymeasure.cli.summary import fmt

if TYPE_CHECKING:
    from llenergymeasure.config.campaign import CampaignPlan
    from llenergymeasure.domain.campaign import CampaignEntry, CampaignManifest
    from llenergymeasure.orchestration.campaign import CampaignOptions, CampaignProgress
    from llenergymeasure.orchestration.launcher import ExperimentOutcome

FAILED_EXIT = 1


def campaign(
    campaign_path: Path = typer.Argument(..., help="Campaign YAML file (configs/campaigns/)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the ordered plan; run and create nothing."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the campaign: skip completed experiments, rerun the rest."
    ),
    accelerate_config: Path | None = typer.Option(
        None,
        "--accelerate-config",
        help="accelerate config file for configurations with several processes (see launch/).",
    ),
    metrics_port: int | None = METRICS_PORT,
    metrics_host: str = METRICS_HOST,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Run every experiment of a campaign (sweeps x cycles) through the launcher of llem run."""
    from llenergymeasure.config.campaign import plan_campaign
    from llenergymeasure.orchestration.campaign import CampaignOptions, check_campaign

    plan = plan_campaign(campaign_path)
    check_metrics_options(metrics_port, metrics_host)
    enable_logging(verbose)
    options = CampaignOptions(resume, accelerate_config, verbose, sys.argv)
    if dry_run:
        check_campaign(plan, options)
        _print_plan(plan, resume)
        return
    quiet_third_party()
    from llenergymeasure.errors import Interrupted

    try:
        with live_metrics(metrics_port, metrics_host) as live:
            manifest = _run(plan, replace(options, live=live))
    except KeyboardInterrupt as exc:
        err_console.print(
            f"campaign interrupted; continue it with: llem campaign {campaign_path} --resume",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(exc.exit_code if isinstance(exc, Interrupted) else 130) from None
    _print_outcome(plan, manifest)
    if any(e.status != "completed" for e in manifest.entries):
        raise typer.Exit(FAILED_EXIT)


def _run(plan: CampaignPlan, options: CampaignOptions) -> CampaignManifest:
    from llenergymeasure.orchestration.campaign import run_campaign

    campaign = plan.campaign
    console.print(
        f"[bold]llem[/] campaign [cyan]{escape(campaign.campaign_name)}[/]: "
        f"{_shape(plan)}, order {campaign.order}",
        highlight=False,
    )
    with progress_bars(_RemainingColumn()) as progress:
        observer = _ProgressObserver(progress, len(plan.experiments))
        return run_campaign(plan, options, observer)


class _RemainingColumn(ProgressColumn):
    """Time left, counting down from the last estimate (mean duration x experiments left)."""

    def render(self, task: Task) -> Text:
        if "deadline" not in task.fields:
            return Text("")
        deadline = task.fields["deadline"]
        if deadline is None:
            return Text("left: after the first experiment", style="progress.remaining")
        return Text(f"~{_clock(max(0.0, deadline - time.monotonic()))} left", "progress.remaining")


class _ProgressObserver:
    """Draws the campaign bar, the current experiment's phases, and a line per experiment."""

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.total = total
        self.campaign_task: int | None = None  # added at the first event, after the checks
        self.phase_tasks: dict[str, int] = {}

    def experiment_started(self, entry: CampaignEntry, status: CampaignProgress) -> None:
        self._update(status)
        self.progress.console.print(
            f"[bold]\\[{entry.index + 1}/{self.total}][/] {escape(entry.config_name)} "
            f"({escape(_overrides(entry))}) cycle {entry.cycle}: {escape(entry.experiment_id)}",
            highlight=False,
        )

    def experiment_ended(
        self,
        entry: CampaignEntry,
        outcome: ExperimentOutcome | None,
        status: CampaignProgress,
    ) -> None:
        for task in self.phase_tasks.values():
            self.progress.remove_task(task)
        self.phase_tasks.clear()
        self._update(status)
        if outcome is None:
            self.progress.console.print(
                f"  [red]failed[/]: {escape(entry.error or '')}", highlight=False
            )
            return
        result = outcome.aggregated
        self.progress.console.print(
            f"  [green]done[/]: {fmt(result.energy_per_output_token_j, 'J/token', 4)} "
            f"({escape(result.energy_method)}), {fmt(result.total_tokens_per_second, 'tok/s')}",
            highlight=False,
        )

    def waiting(self, seconds: float, reason: str, status: CampaignProgress) -> None:
        self._update(status)
        self.progress.console.print(f"  waiting {seconds:g} s ({reason})", highlight=False)

    def phase(self, phase: str, done: int, total: int) -> None:
        if phase not in self.phase_tasks:
            self.phase_tasks[phase] = self.progress.add_task(f"  {phase}", total=max(total, 1))
        self.progress.update(self.phase_tasks[phase], completed=done, total=max(total, 1))

    def output(self, line: str) -> None:
        err_console.print(line, markup=False, highlight=False)

    def _update(self, status: CampaignProgress) -> None:
        deadline = None if status.remaining_s is None else time.monotonic() + status.remaining_s
        if self.campaign_task is None:
            self.campaign_task = self.progress.add_task("campaign", total=self.total)
        self.progress.update(
            self.campaign_task, completed=status.completed + status.failed, deadline=deadline
        )


def _print_plan(plan: CampaignPlan, resume: bool) -> None:
    """The experiments in run order; with --resume, the status each has in the manifest."""
    from llenergymeasure.results.campaigns import campaign_manifest_path, read_campaign_manifest

    campaign = plan.campaign
    path = campaign_manifest_path(plan.results_dir, campaign.campaign_name)
    statuses = {}
    if resume and path.is_file():
        from llenergymeasure.orchestration.campaign_state import check_resumable

        manifest = read_campaign_manifest(plan.results_dir, campaign.campaign_name)
        check_resumable(plan, manifest)
        statuses = {e.index: e.status for e in manifest.entries}
    table = Table(
        "#",
        "experiment name",
        "cycle",
        "configuration",
        *(["status"] if statuses else []),
        title=Text(
            f"{campaign.campaign_name}: {_shape(plan)}, order {campaign.order}"
            + (f" (seed {campaign.seed})" if campaign.order == "shuffled" else "")
        ),
        title_justify="left",
    )
    for planned in plan.experiments:
        table.add_row(
            str(planned.index + 1),
            Text(planned.configuration.config.name),
            str(planned.cycle),
            Text(planned.configuration.label),
            *([statuses.get(planned.index, "pending")] if statuses else []),
        )
    console.print(table)
    console.print(
        f"gaps: {campaign.gap_s:g} s between experiments, {campaign.cycle_gap_s:g} s where "
        f"the cycle changes; manifest: {path} (dry run: nothing written)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _print_outcome(plan: CampaignPlan, manifest: CampaignManifest) -> None:
    from llenergymeasure.results.campaigns import campaign_manifest_path

    name = manifest.campaign_name
    done = [e for e in manifest.entries if e.status == "completed"]
    console.print(
        f"campaign {name}: {len(done)} of {len(manifest.entries)} experiments completed",
        markup=False,
        highlight=False,
    )
    for entry in manifest.entries:
        if entry.status != "completed":
            console.print(
                f"[red]{entry.status}[/] {entry.index + 1} {escape(entry.config_name)} cycle "
                f"{entry.cycle}: {escape(entry.error or '')}",
                highlight=False,
                soft_wrap=True,
            )
    console.print(
        f"manifest: {campaign_manifest_path(plan.results_dir, name)}",
        markup=False,
        highlight=False,
    )
    console.print(
        f"compare:  llem results compare --campaign {name} --results-dir {plan.results_dir}",
        markup=False,
        highlight=False,
    )


def _shape(plan: CampaignPlan) -> str:
    configurations, cycles = len(plan.configurations), plan.campaign.cycles
    return (
        f"{len(plan.experiments)} experiments ({configurations} configuration"
        f"{'s' if configurations != 1 else ''} x {cycles} cycle{'s' if cycles != 1 else ''})"
    )


def _overrides(entry: CampaignEntry) -> str:
    from llenergymeasure.config.campaign import describe_overrides

    return describe_overrides(entry.overrides)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
