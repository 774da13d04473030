"""Load an experiment config: YAML file, then `--set` overrides, then pydantic defaults.

This is the one place where precedence is applied (CLI > YAML > field defaults).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 100_000


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Read, override and validate an experiment config.

    Args:
        path: YAML file.
        overrides: ``dotted.path=value`` strings; values are parsed as YAML scalars.

    Raises:
        ConfigError: naming the file and the field, on any problem.

    """
    path = Path(path)
    data = read_yaml_mapping(path)
    for item in overrides:
        apply_override(data, item)
    return validate_config(data, source=str(path))


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping, with safe loading and a size limit."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(
            f"{path}: values nested too deeply; write the config out plainly"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level")
    if _exceeds_node_count(data, MAX_CONFIG_NODES):
        raise ConfigError(
            f"{path}: more than {MAX_CONFIG_NODES} values once anchors are expanded "
            "(an alias bomb?); write the config out plainly"
        )
    return data


def _exceeds_node_count(data: Any, limit: int) -> bool:
    """Count values as validation would visit them, expanding shared (aliased) objects.

    YAML aliases share one object, so loading a "billion laughs" file is cheap but
    validating it is not. The walk stops as soon as the limit is passed.
    """
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def apply_override(data: dict[str, Any], item: str) -> None:
    """Set ``a.b.c=value`` in a nested dict, creating sections that are absent."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected dotted.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"--set {key}: value nested too deeply") from None
    set_dotted(data, key.strip(), value, label=f"--set {key}")


def set_dotted(data: dict[str, Any], key: str, value: Any, label: str | None = None) -> None:
    """Set ``data[a][b][c] = value`` for the key ``a.b.c``, creating absent sections.

    Args:
        data: the nested config mapping, changed in place.
        key: the dotted path.
        value: the value, already parsed.
        label: how an error names the override (default: the key).

    Raises:
        ConfigError: a part of the path is a value, not a section.

    """
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{label or key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def validate_config(data: dict[str, Any], source: str = "config") -> ExperimentConfig:
    """Validate a config mapping, turning pydantic errors into one-line messages."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {format_validation_error(exc)}") from None


def format_validation_error(exc: ValidationError) -> str:
    """One line naming each failing field and its problem."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        problems.append(f"{field}: {message}")
    return "; ".join(problems)
