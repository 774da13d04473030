"""`llem campaign`: every experiment of a campaign through the launcher of `llem run`.

State lives in `results/campaigns/<name>/manifest.json`, written before the first
experiment and rewritten atomically at every change of an entry (pending -> running ->
completed | failed | interrupted). So:
- Ctrl-C or SIGTERM ends the current experiment as `llem run` does (its experiment is
  marked interrupted), marks the entry interrupted and stops the campaign; between
  experiments it stops the campaign with no entry running;
- an experiment that fails is marked failed, with its error, and the campaign goes on;
- after a kill, the entry that was running stays `running`;
- `resume` checks that the campaign file still gives the same entries (configuration,
  cycle, config hash, in order), skips the completed ones and reruns all others.

The manifest, the resume check and the lock are in `campaign_state`.

Waits: `cycle_gap_s` before an experiment whose cycle differs from the previous
experiment's, `gap_s` otherwise; none before the first experiment of a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import yaml

from llenergymeasure.config.campaign import CampaignPlan, Configuration
from llenergymeasure.domain.campaign import CampaignEntry, CampaignManifest
from llenergymeasure.errors import ConfigError, LlemError
from llenergymeasure.fileio import atomic_write_bytes
from llenergymeasure.log import logger
from llenergymeasure.orchestration.campaign_state import (
    CampaignProgress,
    CampaignState,
    campaign_lock,
    gap_before,
)
from llenergymeasure.orchestration.ids import new_experiment_id
from llenergymeasure.orchestration.launcher import (
    ConfigSource,
    ExperimentOutcome,
    LaunchOptions,
    check_experiment,
    run_experiment,
)
from llenergymeasure.orchestration.live_metrics import CampaignCounts, LiveMetrics
from llenergymeasure.orchestration.signals import raise_on_stop_signals
from llenergymeasure.results.campaigns import (
    campaign_dir,
    campaign_manifest_path,
    configuration_file,
)

MAX_ERROR_CHARS = 500


class CampaignObserver(Protocol):
    """Receives the campaign's events; the CLI draws its progress from them."""

    def experiment_started(self, entry: CampaignEntry, progress: CampaignProgress) -> None:
        """An experiment starts (its entry is `running`, with its experiment id)."""

    def experiment_ended(
        self,
        entry: CampaignEntry,
        outcome: ExperimentOutcome | None,
        progress: CampaignProgress,
    ) -> None:
        """An experiment ended: completed (with its outcome) or failed (None)."""

    def waiting(self, seconds: float, reason: str, progress: CampaignProgress) -> None:
        """A gap between experiments begins."""

    def phase(self, phase: str, done: int, total: int) -> None:
        """Progress of the current experiment's phases (baseline, warmup, inference...)."""

    def output(self, line: str) -> None:
        """A log line of a worker process."""


class _QuietObserver:
    """Shows nothing: the manifest and the log say what happened."""

    def experiment_started(self, entry: CampaignEntry, progress: CampaignProgress) -> None:
        pass

    def experiment_ended(
        self,
        entry: CampaignEntry,
        outcome: ExperimentOutcome | None,
        progress: CampaignProgress,
    ) -> None:
        pass

    def waiting(self, seconds: float, reason: str, progress: CampaignProgress) -> None:
        pass

    def phase(self, phase: str, done: int, total: int) -> None:
        pass

    def output(self, line: str) -> None:
        logger.info(line)


@dataclass(frozen=True)
class CampaignOptions:
    """How the campaign's experiments are started, and the live metrics they feed."""

    resume: bool = False
    accelerate_config: Path | None = None
    verbose: bool = False
    launch_command: list[str] | None = None
    live: LiveMetrics | None = None


RunFn = Callable[..., ExperimentOutcome]


def run_campaign(
    plan: CampaignPlan,
    options: CampaignOptions = CampaignOptions(),
    observer: CampaignObserver | None = None,
    *,
    run: RunFn = run_experiment,
    sleep: Callable[[float], None] = time.sleep,
) -> CampaignManifest:
    """Run (or resume) a campaign; returns its final manifest.

    Raises:
        ConfigError: a configuration cannot run, or (resume) the file no longer gives
            the entries of the manifest.
        ResultsError: the campaign exists (without resume) or is running elsewhere.
        KeyboardInterrupt: after the current entry was marked interrupted.

    """
    observer = observer or _QuietObserver()
    check_campaign(plan, options)
    name = plan.campaign.campaign_name
    with campaign_lock(campaign_dir(plan.results_dir, name)), raise_on_stop_signals():
        state = CampaignState(campaign_manifest_path(plan.results_dir, name), plan)
        state.open(options.resume)
        sources = write_configuration_files(plan)
        previous: CampaignEntry | None = None
        for entry in list(state.manifest.entries):
            if entry.status == "completed":
                continue
            if previous is not None:
                _wait(state, entry.index, gap_before(plan, previous, entry), observer, sleep)
            configuration = plan.experiments[entry.index].configuration
            launch = LaunchOptions(
                ConfigSource(sources[configuration.number]),
                options.accelerate_config,
                options.verbose,
            )
            previous = _run_entry(state, entry, configuration, launch, options, observer, run)
        return state.manifest


def check_campaign(plan: CampaignPlan, options: CampaignOptions) -> None:
    """What `llem run` would refuse, for every configuration, reported together."""
    problems = []
    for configuration in plan.configurations:
        source = ConfigSource(Path(f"{configuration.config.name}.yaml"))
        try:
            check_experiment(configuration.config, LaunchOptions(source, options.accelerate_config))
        except LlemError as exc:
            problems.append(f"[{configuration.label}]: {exc}")
    if problems:
        raise ConfigError(
            f"{plan.source}: {len(problems)} of {len(plan.configurations)} configurations "
            f"cannot run: {'; '.join(problems)}"
        )


def write_configuration_files(plan: CampaignPlan) -> dict[int, Path]:
    """Each configuration's resolved config as YAML (workers of several processes read it)."""
    paths = {}
    for configuration in plan.configurations:
        config = configuration.config
        path = configuration_file(plan.results_dir, plan.campaign.campaign_name, config.name)
        text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
        atomic_write_bytes(path, text.encode("utf-8"))
        paths[configuration.number] = path
    return paths


def _wait(
    state: CampaignState,
    next_index: int,
    seconds: float,
    observer: CampaignObserver,
    sleep: Callable[[float], None],
) -> None:
    if seconds <= 0:
        return
    observer.waiting(seconds, "gap between experiments", state.progress(next_index, seconds))
    sleep(seconds)


def _run_entry(
    state: CampaignState,
    entry: CampaignEntry,
    configuration: Configuration,
    launch: LaunchOptions,
    options: CampaignOptions,
    observer: CampaignObserver,
    run: RunFn,
) -> CampaignEntry:
    """Run one entry; a failure is recorded and returned, Ctrl-C is recorded and raised."""
    if entry.status != "pending":
        logger.info(f"experiment {entry.index + 1} was {entry.status}: running it again")
    experiment_id = new_experiment_id(entry.config_name)
    entry = state.update(
        entry,
        status="running",
        experiment_id=experiment_id,
        started_at=datetime.now(timezone.utc),
        ended_at=None,
        error=None,
    )
    observer.experiment_started(entry, state.progress(entry.index))
    _to_live(options.live, state, state.progress(entry.index))
    outcome = None
    try:
        outcome = run(
            configuration.config,
            launch=launch,
            launch_command=options.launch_command,
            progress=observer.phase,
            output=observer.output,
            experiment_id=experiment_id,
            live=options.live,
        )
    except KeyboardInterrupt:
        state.update(entry, status="interrupted", ended_at=datetime.now(timezone.utc))
        raise
    except Exception as exc:  # recorded in the manifest; the campaign goes on
        entry = state.update(
            entry, status="failed", ended_at=datetime.now(timezone.utc), error=_one_line(exc)
        )
        logger.error(
            f"experiment {entry.index + 1} ({experiment_id}) failed: {entry.error}; "
            "going on with the next"
        )
    else:
        entry = state.update(entry, status="completed", ended_at=datetime.now(timezone.utc))
    observer.experiment_ended(entry, outcome, state.progress(entry.index + 1))
    _to_live(options.live, state, state.progress(entry.index + 1))
    return entry


def _to_live(live: LiveMetrics | None, state: CampaignState, progress: CampaignProgress) -> None:
    if live is not None:
        name = state.manifest.campaign_name
        live.campaign(CampaignCounts(name, progress.completed, progress.failed, progress.total))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if not isinstance(exc, LlemError):
        message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return message[:MAX_ERROR_CHARS]
