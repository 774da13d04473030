"""What aggregation checks before it adds anything up (docs/methodology.md, several processes).

- completeness: every process the manifest expects (indices 0..N-1) has a marker
  `.completed_<i>` whose sha256 matches `process_<i>.json`, and that result holds its own
  index and the experiment's id; no result or marker lies beyond N-1;
- temporal overlap: the energy windows are one common window: their starts, and their
  ends, lie within a stated skew of each other (`check_temporal_overlap`). They are
  wall-clock (unix) times, so processes on different hosts compare;
- GPU attribution: no (host, device) with device-level energy appears in two processes,
  and every reading has its component's scope (GPUs device-level; CPU and DRAM
  machine-level, counted once per host);
- parallel groups: the ranks of one tensor-parallel group ran the same requests and
  produced the same tokens (they compute one model together), so that counting the
  group's tokens once, from one rank, is exact (`check_parallel_groups`).

An incomplete experiment whose manifest still says `running` is either still running or
was killed before it could record its end; `run_state` tells which from the launcher's
host and pid in the manifest.
"""

from __future__ import annotations

import gc
import hashlib
import re
import socket
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from llenergymeasure.domain.experiment import (
    CompletionMarker,
    ExperimentManifest,
    RawProcessResult,
)
from llenergymeasure.errors import IncompleteExperiment, ResultsError
from llenergymeasure.results.layout import (
    marker_path,
    parse_model,
    process_result_path,
    read_model,
    read_result_bytes,
)
from llenergymeasure.results.parallel_groups import check_parallel_groups

OVERLAP_FRACTION = 0.5
# Energy windows of one experiment start (and end) within this many seconds of each other,
# or this share of the shortest window when that is longer.
SKEW_FLOOR_S = 1.0
SKEW_FRACTION = 0.02
# A process started this long after the manifest was written is not its launcher
# (the pid was reused); the manifest is written a moment after the launcher starts.
PID_REUSE_SLACK_S = 1.0
RunState = Literal["running", "ended", "unknown"]
_SCOPES = {"gpu": "device", "cpu": "machine", "dram": "machine"}
# Problems of more processes than this are grouped into ranges (`describe`).
LISTED_PROBLEMS = 5
_INDEX_IN_NAME = re.compile(r"((?:process_|\.completed_))\d+")
_INDEXED_FILE = re.compile(r"^(?:process_(\d+)\.json|\.completed_(\d+))$")


@dataclass(frozen=True)
class Completeness:
    """The verified results, and what is wrong with the rest."""

    results: list[RawProcessResult]
    missing: dict[int, str]
    unexpected: list[str]

    @property
    def problems(self) -> list[str]:
        """One phrase per unusable process and per unexpected file."""
        return describe(self.missing) + self.unexpected


@dataclass(frozen=True)
class Verification:
    """Whether the processes ran together on devices of their own."""

    temporal_overlap_verified: bool
    gpu_attribution_verified: bool
    problems: list[str]
    parallel_groups_verified: bool = True


def check_completeness(experiment_dir: Path, manifest: ExperimentManifest) -> Completeness:
    """Check every process the manifest expects, and look for any it does not expect.

    Returns:
        The results that verify, what is wrong with the others, unexpected files.

    """
    results, missing = load_complete_processes(
        experiment_dir, manifest.expected_num_processes, manifest.experiment_id
    )
    return Completeness(results, missing, unexpected_files(experiment_dir, manifest))


def check_not_running(
    experiment_dir: Path, manifest: ExperimentManifest, completeness: Completeness
) -> str:
    """Refuse an experiment whose run is still going; otherwise say how it was left.

    Returns:
        A phrase for an incomplete experiment whose run ended without recording it
        (empty when there is nothing to add).

    Raises:
        IncompleteExperiment: the manifest says `running`, processes are missing, and
            the launcher is alive: "still running (started ..., N of M processes complete)".

    """
    if manifest.status != "running" or not completeness.missing:
        return ""
    started = manifest.created_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    done = f"{len(completeness.results)} of {manifest.expected_num_processes} processes complete"
    state = run_state(manifest)
    if state == "running":
        raise IncompleteExperiment(
            f"{experiment_dir}: still running (started {started}, {done}); "
            "aggregate it when it has finished"
        )
    if state == "ended":
        return f"its run, pid {manifest.launcher_pid}, ended without finishing"
    where = f" on {manifest.launcher_host}" if manifest.launcher_host else ""
    return f"its manifest says running (started {started}{where}, {done})"


def run_state(manifest: ExperimentManifest) -> RunState:
    """Whether the process that created the experiment is alive, as far as this host can see.

    `unknown` when it ran on another host or the manifest does not name it.
    """
    if manifest.launcher_pid is None or manifest.launcher_host != socket.gethostname():
        return "unknown"
    try:
        launcher = psutil.Process(manifest.launcher_pid)
        if launcher.status() == psutil.STATUS_ZOMBIE:
            return "ended"
        started_s = launcher.create_time()
    except psutil.NoSuchProcess:
        return "ended"
    except psutil.Error:
        return "unknown"
    if started_s > manifest.created_at.timestamp() + PID_REUSE_SLACK_S:
        return "ended"
    return "running"


def load_complete_processes(
    experiment_dir: Path, expected: int, experiment_id: str | None = None
) -> tuple[list[RawProcessResult], dict[int, str]]:
    """Results 0..expected-1 whose marker and hash verify; and what is wrong with the rest.

    Args:
        experiment_dir: `raw/<id>`.
        expected: the number of processes the manifest expects.
        experiment_id: when given, a result of another experiment is refused too.

    """
    results, missing = [], {}
    for index in range(expected):
        try:
            results.append(verified_process_result(experiment_dir, index, experiment_id))
        except ResultsError as exc:
            missing[index] = str(exc)
    return results, missing


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while results are parsed and combined.

    Parsing thousands of results allocates millions of dicts and lists; each
    allocation threshold crossed triggers a collection that walks every live object,
    so loading grows faster than linearly (2,048 processes: 7.4 s with the collector,
    3.0 s without). Parsed results hold no reference cycles, so reference counting
    frees everything; the collector resumes afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def describe(problems: dict[int, str]) -> list[str]:
    """One phrase per unusable process; past `LISTED_PROBLEMS`, one per kind of problem.

    Many processes with the same problem (a run of 500 that died early) are named as
    ranges (`processes 2-499: no completion marker .completed_<i>`): the index in a file
    name is generalised to `<i>`, so that the line stays one short line.
    """
    if len(problems) <= LISTED_PROBLEMS:
        return [f"process {index}: {problem}" for index, problem in sorted(problems.items())]
    by_problem: dict[str, list[int]] = defaultdict(list)
    for index, problem in sorted(problems.items()):
        by_problem[_INDEX_IN_NAME.sub(r"\g<1><i>", problem)].append(index)
    return [
        f"{_ranges(indices)}: {problem if len(indices) > 1 else problems[indices[0]]}"
        for problem, indices in by_problem.items()
    ]


def _ranges(indices: list[int]) -> str:
    """`process 3`, `processes 0, 2-5, 9`."""
    spans: list[list[int]] = []
    for i in indices:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    listed = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
    return f"process {listed}" if len(indices) == 1 else f"processes {listed}"


def verified_process_result(
    experiment_dir: Path, index: int, experiment_id: str | None = None
) -> RawProcessResult:
    """Load `process_<i>.json` after checking its marker's hash.

    Raises:
        ResultsError: naming the file and what is wrong with it.

    """
    marker_file = marker_path(experiment_dir, index)
    result_file = process_result_path(experiment_dir, index)
    if not marker_file.exists():
        raise ResultsError(f"no completion marker {marker_file.name}")
    marker = read_model(marker_file, CompletionMarker)
    if not result_file.exists():
        raise ResultsError(f"{result_file.name} missing although marked complete")
    data = read_result_bytes(result_file)
    if hashlib.sha256(data).hexdigest() != marker.result_sha256:
        raise ResultsError(
            f"{result_file.name} does not match the hash in {marker_file.name} "
            "(truncated or changed after it was written)"
        )
    result = parse_model(data, result_file, RawProcessResult)
    if result.process_index != index or marker.process_index != index:
        raise ResultsError(
            f"{result_file.name} holds process_index {result.process_index} and "
            f"{marker_file.name} {marker.process_index}"
        )
    if experiment_id is not None and result.experiment_id != experiment_id:
        raise ResultsError(f"{result_file.name} belongs to experiment {result.experiment_id}")
    return result


def unexpected_files(experiment_dir: Path, manifest: ExperimentManifest) -> list[str]:
    """Results or markers of processes the manifest does not expect."""
    found = []
    for path in sorted(experiment_dir.iterdir()):
        match = _INDEXED_FILE.match(path.name)
        if match and int(match[1] or match[2]) >= manifest.expected_num_processes:
            found.append(path.name)
    return [
        f"unexpected {name}: the manifest expects {manifest.expected_num_processes} process(es)"
        for name in found
    ]


def verify_processes(results: list[RawProcessResult]) -> Verification:
    """Temporal overlap, GPU attribution and parallel groups of complete process results."""
    overlap_ok, overlap_problems = check_temporal_overlap(results)
    attribution_ok, attribution_problems = check_gpu_attribution(results)
    groups_ok, group_problems = check_parallel_groups(results)
    return Verification(
        overlap_ok,
        attribution_ok,
        overlap_problems + attribution_problems + group_problems,
        parallel_groups_verified=groups_ok,
    )


def check_temporal_overlap(results: list[RawProcessResult]) -> tuple[bool, list[str]]:
    """The processes' energy windows are one common window, within the skew bounds.

    Every energy window opens after a barrier and closes after another, so their starts
    and their ends each lie within `max(SKEW_FLOOR_S, SKEW_FRACTION x shortest window)`
    of one another (the bound allows for clock offsets between hosts). Schema 1 results
    (no energy window) are held to their old rule: the busy windows share at least half
    of the shortest one.
    """
    if len(results) < 2:
        return True, []
    if any(r.energy_window_s is None for r in results):
        return _legacy_overlap(results)
    starts = [r.energy_window_start_unix_s for r in results]
    ends = [r.energy_window_end_unix_s for r in results]
    shortest_s = min(r.energy_window_s for r in results)  # type: ignore[type-var]
    bound_s = max(SKEW_FLOOR_S, SKEW_FRACTION * shortest_s)
    start_skew_s = max(starts) - min(starts)  # type: ignore[operator]
    end_skew_s = max(ends) - min(ends)  # type: ignore[operator]
    if start_skew_s <= bound_s and end_skew_s <= bound_s:
        return True, []
    return False, [
        f"energy windows are not one common window: starts {start_skew_s:.2f} s apart and "
        f"ends {end_skew_s:.2f} s apart (at most {bound_s:.2f} s each); "
        "the processes did not run together"
    ]


def _legacy_overlap(results: list[RawProcessResult]) -> tuple[bool, list[str]]:
    """Schema 1: the busy windows share at least half of the shortest one."""
    overlap_s = min(r.inference_end_unix_s for r in results) - max(
        r.inference_start_unix_s for r in results
    )
    shortest = min(results, key=lambda r: r.inference_duration_s)
    if overlap_s >= OVERLAP_FRACTION * shortest.inference_duration_s:
        return True, []
    latest = max(results, key=lambda r: r.inference_start_unix_s).process_index
    first_done = min(results, key=lambda r: r.inference_end_unix_s).process_index
    if overlap_s < 0:
        how = f"do not overlap: process {latest} started {-overlap_s:.2f} s after"
    else:
        how = f"overlap by only {overlap_s:.2f} s: process {latest} started shortly before"
    return False, [
        f"inference windows {how} process {first_done} ended (they must share at least "
        f"half of the shortest window, {shortest.inference_duration_s:.2f} s); "
        "the processes did not run together"
    ]


def check_gpu_attribution(results: list[RawProcessResult]) -> tuple[bool, list[str]]:
    """No device-level (host, device) in two processes; every reading of its own scope.

    GPUs are device-level, CPU packages and DRAM machine-level (counted once per host); a
    reading of the wrong scope could be counted neither way. Hosts are told apart by
    their identity (boot id), not their name. A MIG instance's energy is its parent GPU's,
    so MIG readings are owned by the parent's UUID: two processes on sibling instances
    would count the parent twice.
    """
    owners: dict[tuple[str, str], list[int]] = defaultdict(list)
    problems = []
    for r in results:
        wrong = sorted({f"{d.kind} ({d.scope})" for d in r.devices if d.scope != _SCOPES[d.kind]})
        if wrong:
            problems.append(
                f"process {r.process_index} mixes device- and machine-level energy readings "
                f"({', '.join(wrong)} is of the wrong scope), which cannot be counted once "
                "per host"
            )
        for device in r.devices:
            if device.scope == "device":
                owner = device.parent_uuid if device.is_mig and device.parent_uuid else None
                owners[(r.host_id or r.host, owner or device.device_id)].append(r.process_index)
    problems += [
        f"device {device_id} on {host} is claimed by processes {', '.join(map(str, indices))}"
        for (host, device_id), indices in owners.items()
        if len(indices) > 1
    ]
    return not problems, problems
