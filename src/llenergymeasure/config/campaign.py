"""Campaign configuration: one base experiment, the points of a deployment space, repeats.

A campaign file names a base experiment config and the configurations to measure,
either as sweep axes (every combination of their values) or as an explicit list of
overrides, and how often and in which order to run them:

```yaml
campaign_name: batch-size-sweep
base: {model: {name: builtin:smollm2-135m}, ...}   # or a path to an experiment YAML
sweep:                                             # or experiments: [{...}, {...}]
  generation.batch_size: [1, 4, 16]
  model.dtype: [float32, bfloat16]
cycles: 3
order: interleaved                                 # grouped | interleaved | shuffled
seed: 0
gap_s: 5
cycle_gap_s: 60
```

Each configuration is the base with its overrides set at their dotted paths (as
`--set` does), then validated as an experiment config; every invalid configuration is
reported in one error before anything runs. Experiment names are `<campaign>-c<k>`,
k numbering the configurations from 1 (a `name` in the base is replaced).

Orders (each configuration runs `cycles` times):
- grouped: every cycle of configuration 1, then of configuration 2, ...
- interleaved: cycle 1 of every configuration, then cycle 2, ... (slow drifts of the
  machine, such as temperature, spread evenly over the configurations);
- shuffled: a permutation of the whole list drawn with `random.Random(seed)`; a
  configuration's cycles are numbered in the order they run.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from llenergymeasure.config.loader import format_validation_error, read_yaml_mapping, set_dotted
from llenergymeasure.config.models import MAX_SEED, ExperimentConfig
from llenergymeasure.errors import ConfigError

# Room for the `-c<k>` suffix within the 64 characters of an experiment name.
CAMPAIGN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,55}$"
MAX_CONFIGURATIONS = 10_000
# Fields a configuration may not change: they name the experiment and where it is stored.
RESERVED_PATHS = ("name", "results_dir")
CampaignOrder = Literal["grouped", "interleaved", "shuffled"]


class CampaignConfig(BaseModel):
    """A campaign file: a base experiment, its configurations, cycles and order."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    campaign_name: str = Field(
        pattern=CAMPAIGN_NAME_PATTERN,
        description="Names the campaign's folder results/campaigns/<name>/ and its experiments.",
    )
    base: dict[str, Any] | str = Field(
        description="An experiment config mapping, or the path of an experiment YAML "
        "(relative to the campaign file)."
    )
    sweep: dict[str, list[Any]] | None = Field(
        None, description="Dotted path -> values; every combination is a configuration."
    )
    experiments: list[dict[str, Any]] | None = Field(
        None, description="The configurations as a list of overrides, instead of a sweep."
    )
    cycles: int = Field(1, ge=1, le=1_000, description="Runs of every configuration.")
    order: CampaignOrder = "interleaved"
    seed: int = Field(0, ge=0, le=MAX_SEED, description="Seed of the shuffled order.")
    gap_s: float = Field(0.0, ge=0, le=86_400, description="Wait between experiments.")
    cycle_gap_s: float = Field(
        0.0,
        ge=0,
        le=86_400,
        description="Wait instead of gap_s where the next experiment belongs to another cycle.",
    )

    @model_validator(mode="after")
    def _points(self) -> CampaignConfig:
        if self.sweep is not None and self.experiments is not None:
            raise ValueError("give either sweep or experiments, not both")
        for path, values in (self.sweep or {}).items():
            _check_path(path, "sweep")
            if not values:
                raise ValueError(f"sweep: {path}: give at least one value")
        if self.experiments is not None and not self.experiments:
            raise ValueError("experiments: give at least one configuration")
        for i, overrides in enumerate(self.experiments or [], start=1):
            for path in flatten_overrides(overrides):
                _check_path(path, f"experiments[{i}]")
        return self


@dataclass(frozen=True)
class Configuration:
    """One point of the deployment space: the base with these overrides."""

    number: int
    overrides: dict[str, Any]
    config: ExperimentConfig

    @property
    def label(self) -> str:
        """`generation.batch_size=4, model.dtype=float32`, or `base` without overrides."""
        return describe_overrides(self.overrides)


@dataclass(frozen=True)
class PlannedExperiment:
    """One run of a configuration: its position in the campaign and its cycle (from 1)."""

    index: int
    configuration: Configuration
    cycle: int


@dataclass(frozen=True)
class CampaignPlan:
    """A validated campaign, expanded and ordered."""

    campaign: CampaignConfig
    source: Path
    configurations: list[Configuration]
    experiments: list[PlannedExperiment]

    @property
    def results_dir(self) -> Path:
        """The results root shared by every configuration."""
        return self.configurations[0].config.results_dir


def plan_campaign(path: str | Path) -> CampaignPlan:
    """Read, expand and order a campaign file.

    Raises:
        ConfigError: naming the file and every problem (all invalid configurations).

    """
    path = Path(path)
    campaign = load_campaign(path)
    base = resolve_base(campaign, path)
    configurations = expand_configurations(campaign, base, source=str(path))
    experiments = order_experiments(configurations, campaign.cycles, campaign.order, campaign.seed)
    return CampaignPlan(campaign, path, configurations, experiments)


def load_campaign(path: Path) -> CampaignConfig:
    """Parse and validate the campaign file itself (not yet its configurations)."""
    data = read_yaml_mapping(path)
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {format_validation_error(exc)}") from None


def resolve_base(campaign: CampaignConfig, campaign_path: Path) -> dict[str, Any]:
    """The base experiment mapping; a path is read relative to the campaign file."""
    if isinstance(campaign.base, dict):
        return campaign.base
    base_path = Path(campaign.base)
    if not base_path.is_absolute():
        base_path = campaign_path.parent / base_path
    return read_yaml_mapping(base_path)


def configuration_overrides(campaign: CampaignConfig) -> list[dict[str, Any]]:
    """The overrides of each configuration, in order (the first sweep axis varies slowest).

    Raises:
        ConfigError: the sweep has more than MAX_CONFIGURATIONS combinations.

    """
    if campaign.experiments is not None:
        return [flatten_overrides(overrides) for overrides in campaign.experiments]
    if campaign.sweep is None:
        return [{}]
    count = math.prod(len(values) for values in campaign.sweep.values())
    if count > MAX_CONFIGURATIONS:
        raise ConfigError(
            f"sweep: {count} combinations, more than {MAX_CONFIGURATIONS}; sweep fewer values"
        )
    paths = list(campaign.sweep)
    combos = itertools.product(*campaign.sweep.values())
    return [flatten_overrides(dict(zip(paths, combo, strict=True))) for combo in combos]


def expand_configurations(
    campaign: CampaignConfig, base: dict[str, Any], source: str = "campaign"
) -> list[Configuration]:
    """Every configuration validated; all problems reported together.

    Raises:
        ConfigError: one line: how many configurations are invalid, each one's
            overrides in brackets and its problems; or which configurations are identical.

    """
    all_overrides = configuration_overrides(campaign)
    configurations, problems = [], []
    for number, overrides in enumerate(all_overrides, start=1):
        try:
            data = _configuration_data(base, overrides, f"{campaign.campaign_name}-c{number}")
            config = ExperimentConfig.model_validate(data)
        except ConfigError as exc:
            problems.append((describe_overrides(overrides), str(exc)))
        except ValidationError as exc:
            problems.append((describe_overrides(overrides), format_validation_error(exc)))
        else:
            configurations.append(Configuration(number, overrides, config))
    if problems:
        raise ConfigError(f"{source}: {_describe_problems(problems, len(all_overrides))}")
    _refuse_duplicates(configurations, source)
    return configurations


def order_experiments(
    configurations: list[Configuration], cycles: int, order: CampaignOrder, seed: int
) -> list[PlannedExperiment]:
    """Each configuration `cycles` times, in the campaign's order (see the module doc)."""
    if order == "interleaved":
        sequence = [c for _ in range(cycles) for c in configurations]
    else:
        sequence = [c for c in configurations for _ in range(cycles)]
    if order == "shuffled":
        random.Random(seed).shuffle(sequence)
    runs: dict[int, int] = {}
    planned = []
    for index, configuration in enumerate(sequence):
        runs[configuration.number] = runs.get(configuration.number, 0) + 1
        planned.append(PlannedExperiment(index, configuration, runs[configuration.number]))
    return planned


def flatten_overrides(overrides: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`{generation: {batch_size: 4}}` and `{generation.batch_size: 4}` both give the latter."""
    flat: dict[str, Any] = {}
    for key, value in overrides.items():
        flat |= _flat(f"{prefix}{key}", value)
    return flat


def describe_overrides(overrides: dict[str, Any]) -> str:
    """`generation.batch_size=4, model.dtype=float32`; `base` when there are none."""
    if not overrides:
        return "base"
    return ", ".join(f"{path}={format_value(value)}" for path, value in overrides.items())


def format_value(value: Any) -> str:
    """A value as YAML would write it inline: true, null, 4, float32, [1, 2]."""
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


def _flat(path: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return flatten_overrides(value, prefix=f"{path}.")
    return {path: value}


def _check_path(path: str, where: str) -> None:
    parts = path.split(".")
    if not all(part.strip() for part in parts):
        raise ValueError(f"{where}: {path!r} is not a dotted path such as generation.batch_size")
    if parts[0] in RESERVED_PATHS:
        raise ValueError(
            f"{where}: {path}: set by the campaign (names and results root are shared)"
        )


def _configuration_data(base: dict[str, Any], overrides: dict[str, Any], name: str) -> dict:
    """A deep copy of the base (through JSON types) with the overrides and the name set."""
    data = orjson.loads(orjson.dumps(base, default=str))
    for path, value in overrides.items():
        set_dotted(data, path, value, label=path)
    data["name"] = name
    return data


def _describe_problems(problems: list[tuple[str, str]], total: int) -> str:
    """`2 of 8 configurations are invalid: [overrides]: problem; ...`, said once if shared."""
    messages = {message for _, message in problems}
    if len(problems) == total > 1 and len(messages) == 1:
        return f"all {total} configurations are invalid: {messages.pop()}"
    listed = "; ".join(f"[{label}]: {message}" for label, message in problems)
    return f"{len(problems)} of {total} configurations are invalid: {listed}"


def _refuse_duplicates(configurations: list[Configuration], source: str) -> None:
    """Two configurations that resolve to the same experiment would be merged by compare."""
    seen: dict[bytes, int] = {}
    for configuration in configurations:
        key = orjson.dumps(
            configuration.config.model_dump(mode="json", exclude={"name"}),
            option=orjson.OPT_SORT_KEYS,
        )
        if key in seen:
            raise ConfigError(
                f"{source}: configurations {seen[key]} and {configuration.number} are the same "
                f"experiment ([{configuration.label}]); remove the repeated value"
            )
        seen[key] = configuration.number
