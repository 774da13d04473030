"""Measuring inside the caller's own `torchrun`/`accelerate` job, one result per rank.

Rank 0 creates the experiment (`results/raw/<id>/experiment.json`, expecting one
process per rank) and sends its id to the others; every rank measures its own devices
with `measure`, whose window stays open until every rank has finished (a barrier), and
writes `process_<rank>.json` and its completion marker; `finish` waits for every rank,
then rank 0 marks the experiment completed and aggregates it with the checks of
`llem run` (every rank complete, windows overlapping, no device counted twice).
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from llenergymeasure.api.devices import Devices, EnergyChoice
from llenergymeasure.api.experiments import aggregate
from llenergymeasure.api.measurement import Measurement, measure
from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.environment import collect_environment
from llenergymeasure.core.host import host_identity
from llenergymeasure.core.power_integral import power_readings_per_device
from llenergymeasure.defaults import RESULTS_DIR, SAMPLE_INTERVAL_MS
from llenergymeasure.domain.energy import BOUNDARY_COMPONENTS, headline_boundary, weakest_method
from llenergymeasure.domain.experiment import AggregatedResult, RawProcessResult
from llenergymeasure.errors import ConfigError
from llenergymeasure.orchestration.manifest import claim_experiment, set_status, write_manifest
from llenergymeasure.results.layout import (
    ResultsLayout,
    marker_path,
    process_result_path,
    write_marker,
    write_model,
)


class RankResults:
    """One experiment made of the ranks of the caller's distributed job.

    ```python
    ranks = llem.RankResults("my-job", model_name="my-model")   # after init_process_group
    with ranks.measure() as m:
        out = model.generate(**inputs)
    ranks.write(m, output_tokens=..., input_tokens=..., num_requests=...)
    result = ranks.finish()   # the AggregatedResult on rank 0, None elsewhere
    ```

    Without an initialised `torch.distributed` process group the job is one process.

    Args:
        name: the experiment's name (its id is `<name>_<UTC time>_<hex>`).
        model_name: what the ranks run, recorded in the results.
        results_dir: the results root.

    Raises:
        ConfigError: `name` is not a valid experiment name.

    """

    def __init__(self, name: str, model_name: str, results_dir: str | Path = RESULTS_DIR) -> None:
        self.config = validate_config(
            {"name": name, "model": {"name": model_name}, "results_dir": str(results_dir)},
            source="llem.RankResults",
        )
        self.layout = ResultsLayout(Path(results_dir))
        self.rank, self.world_size, self._dist = _process_group()
        created = None
        if self.rank == 0:
            experiment_id, experiment_dir = claim_experiment(self.layout, name)
            write_manifest(experiment_dir, experiment_id, self.config, self.world_size)
            created = experiment_id
        self.experiment_id: str = self._broadcast(created)
        self.experiment_dir = self.layout.experiment_dir(self.experiment_id)
        self._started_at = datetime.now(timezone.utc)

    def measure(
        self,
        devices: Devices = None,
        sample_interval_ms: int = SAMPLE_INTERVAL_MS,
        baseline: bool | float = False,
        energy: EnergyChoice = "auto",
    ) -> measure:
        """A `measure` window of this rank that stays open until every rank's body ended.

        The arguments are `llem.measure`'s. With a baseline, each rank measures its
        devices idle as its first window opens, before the ranks meet at the barrier:
        unlike `llem run`'s, the ranks' baselines are not taken together, so a machine-level
        one (RAPL, the estimate) may see a sibling still at work, which it reports
        (`baseline_host_busy`).
        """
        barrier = self._dist.barrier if self._dist is not None else None
        return measure(devices, sample_interval_ms, baseline, energy, barrier=barrier)

    def write(
        self,
        measurement: Measurement,
        *,
        output_tokens: int,
        input_tokens: int = 0,
        num_requests: int = 0,
    ) -> Path:
        """Write this rank's `process_<rank>.json`, then its completion marker.

        Raises:
            ConfigError: the measurement's window has not closed.

        """
        if not measurement.done or measurement.breakdown is None:
            raise ConfigError("RankResults.write: the measurement's window is still open")
        result = self._result(measurement, output_tokens, input_tokens, num_requests)
        path = process_result_path(self.experiment_dir, self.rank)
        write_marker(self.experiment_dir, self.rank, write_model(path, result))
        return path

    def finish(self) -> AggregatedResult | None:
        """Wait for every rank; rank 0 records how it ended and aggregates it.

        The manifest says `completed` when every rank wrote its result, else `failed`.

        Raises:
            IncompleteExperiment: a rank wrote no result.
            UnverifiedExperiment: the windows do not overlap or a device is claimed twice.

        """
        if self._dist is not None:
            self._dist.barrier()
        if self.rank != 0:
            return None
        written = all(
            marker_path(self.experiment_dir, rank).exists() for rank in range(self.world_size)
        )
        set_status(self.experiment_dir, "completed" if written else "failed")
        return aggregate(self.experiment_dir)

    def _result(
        self, m: Measurement, output_tokens: int, input_tokens: int, num_requests: int
    ) -> RawProcessResult:
        assert m.breakdown is not None and m.start_unix_s is not None
        assert m.busy_s is not None and m.duration_s is not None
        ordinals = m.cuda_ordinals
        on_gpu = bool(ordinals)
        wanted = BOUNDARY_COMPONENTS[headline_boundary(on_gpu)]
        methods = [c.method for c in m.components if c.component in wanted]
        per_device = power_readings_per_device(m.samples)
        return RawProcessResult(
            experiment_id=self.experiment_id,
            process_index=self.rank,
            num_processes=self.world_size,
            host=socket.gethostname(),
            host_id=host_identity(),
            pid=os.getpid(),
            config_name=self.config.name,
            model_name=self.config.model.name,
            device=",".join(f"cuda:{o}" for o in ordinals) or "cpu",
            started_at=self._started_at,
            ended_at=datetime.now(timezone.utc),
            inference_start_unix_s=m.start_unix_s,
            inference_end_unix_s=m.start_unix_s + m.busy_s,
            inference_duration_s=m.busy_s,
            energy_window_start_unix_s=m.start_unix_s,
            energy_window_end_unix_s=m.start_unix_s + m.duration_s,
            energy_window_s=m.duration_s,
            num_requests=num_requests,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_per_second=output_tokens / m.busy_s if output_tokens and m.busy_s > 0 else None,
            energy_method=weakest_method(methods) if methods else "none",
            energy_readings=m.readings,
            energy_components=m.components,
            energy_boundaries=m.boundaries,
            energy_breakdown=m.breakdown,
            energy_per_output_token_j=(
                m.breakdown.raw_j / output_tokens
                if m.breakdown.raw_j is not None and output_tokens
                else None
            ),
            thermal_throttle=m.thermal_throttle,
            environment=collect_environment(ordinals),
            extended=m.extended,
            sample_interval_ms=m.sample_interval_ms,
            sample_count=min(per_device.values()) if per_device else None,
            warnings=m.warnings,
        )

    def _broadcast(self, value: str | None) -> str:
        """Rank 0's string on every rank, sent as UTF-8 bytes in tensors (never pickled)."""
        if self._dist is None:
            assert value is not None
            return value
        import torch

        from llenergymeasure.orchestration.collectives import broadcast_bytes

        device = (
            torch.device("cuda", torch.cuda.current_device())
            if self._dist.get_backend() == "nccl"
            else torch.device("cpu")
        )
        payload = value.encode() if value is not None else None
        return broadcast_bytes(payload, device).decode()


def _process_group() -> tuple[int, int, Any]:
    """(rank, world size, `torch.distributed`) of an initialised group; (0, 1, None) else."""
    try:
        import torch.distributed as dist
    except ImportError:
        return 0, 1, None
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1, None
    return dist.get_rank(), dist.get_world_size(), dist
