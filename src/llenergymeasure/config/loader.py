"""Load an experiment config: YAML file, then `--set` overrides, then pydantic defaults.

This is the one place where precedence is applied (CLI > YAML > field defaults).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

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
    labels = {}
    for item in overrides:
        key = apply_override(data, item)
        labels[key] = f"--set {item}"
    return validate_config(data, source=str(path), overrides=labels)


class _StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses a key given twice in one mapping (the last would win).

    A key merged in with `<<` may be given again: that is what merging is for.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                continue
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"key {key!r} given twice (first on line {first_line[key]})",
                    key_node.start_mark,
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str) -> Any:
    """`yaml.safe_load` that refuses duplicate keys."""
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse a YAML file that must hold a mapping, with safe loading and a size limit."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config file is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8"))
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


def apply_override(data: dict[str, Any], item: str) -> str:
    """Set ``a.b.c=value`` in a nested dict, creating sections that are absent.

    Returns:
        The dotted key that was set.

    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected dotted.path=value")
    try:
        value = parse_yaml(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    except RecursionError:
        raise ConfigError(f"--set {key}: value nested too deeply") from None
    set_dotted(data, key, value, label=f"--set {key}")
    return key


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


def validate_config(
    data: dict[str, Any], source: str = "config", overrides: dict[str, str] | None = None
) -> ExperimentConfig:
    """Validate a config mapping, turning pydantic errors into one-line messages.

    Args:
        data: the config mapping.
        source: what a problem in the mapping is blamed on (the file).
        overrides: dotted key -> how to name the override that set it (`--set a.b=1`); a
            problem in a field an override set is blamed on that override.

    Raises:
        ConfigError: naming the source (or the override) and each failing field.

    """
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_blame(exc, source, overrides or {})) from None


def _blame(exc: ValidationError, source: str, overrides: dict[str, str]) -> str:
    """`file: a: problem; --set b=x: b: problem`, the problems grouped by where they came from."""
    grouped: dict[str, list[str]] = {}
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        origin = next(
            (
                label
                for key, label in overrides.items()
                if field == key or field.startswith(f"{key}.") or key.startswith(f"{field}.")
            ),
            source,
        )
        grouped.setdefault(origin, []).append(_describe(err))
    return "; ".join(f"{origin}: {'; '.join(problems)}" for origin, problems in grouped.items())


def format_validation_error(exc: ValidationError) -> str:
    """One line naming each failing field and its problem."""
    return "; ".join(_describe(err) for err in exc.errors())


def _describe(err: ErrorDetails) -> str:
    """`field: problem`, saying plainly what pydantic's message leaves implicit."""
    field = ".".join(str(p) for p in err["loc"]) or "(top level)"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    elif err["type"] == "finite_number":
        message = "NaN and infinity are not allowed; give a finite number"
    elif isinstance(err.get("input"), bool) and err["type"] in {"int_type", "float_type"}:
        message = f"{message}, not a boolean (YAML reads yes/no/on/off/true/false as booleans)"
    return f"{field}: {message}"
