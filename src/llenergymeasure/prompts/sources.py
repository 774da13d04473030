"""Prompt sources: the bundled prompt sets and user JSONL/TXT files.

A source is one of:

- `builtin:<name>`: a JSONL set shipped inside the package (`prompts/data/<name>.jsonl`);
- a `.jsonl` file: one JSON object per line, the text under `"prompt"` (or `"text"`),
  an optional `"id"` (default `<file stem>-<line number>`) and an optional `"task"`;
- a `.txt` file: one prompt per non-empty line, ids `<file stem>-<line number>`.

Blank lines are skipped in both formats. Every problem raises `PromptsError` with one
line naming the source (and the line where there is one) and what to do about it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llenergymeasure.errors import PromptsError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from importlib.resources.abc import Traversable

    from llenergymeasure.config.models import PromptsConfig

BUILTIN_PREFIX = "builtin:"
MAX_FILE_BYTES = 64 * 1024 * 1024
"""Largest prompts file accepted, in bytes: prompts are text, not a corpus."""

_DATA_PACKAGE = "llenergymeasure.prompts"
_DATA_DIR = "data"
_SUFFIXES = (".jsonl", ".txt")
_TEXT_KEYS = ("prompt", "text")


@dataclass(frozen=True)
class Prompt:
    """One prompt of a source.

    Attributes:
        id: Identifier, unique within its source.
        text: The prompt text, as given to the tokenizer (before any chat template).
        task: Kind of task ("qa", "code", ...) where the source says; None otherwise.

    """

    id: str
    text: str
    task: str | None = None


def list_builtin_sets() -> list[str]:
    """Names of the prompt sets bundled with the package, sorted (e.g. `["mixed"]`)."""
    data = _data_dir()
    if not data.is_dir():
        return []
    return sorted(
        entry.name.removesuffix(".jsonl")
        for entry in data.iterdir()
        if entry.is_file() and entry.name.endswith(".jsonl")
    )


def read_prompt_source(source: str) -> list[Prompt]:
    """Read every prompt of a source, in source order.

    Args:
        source: `builtin:<name>`, or a path to a `.jsonl` or `.txt` file.

    Returns:
        The prompts, in the order the source lists them.

    Raises:
        PromptsError: The source is missing, unreadable, malformed or empty.

    """
    if source.startswith(BUILTIN_PREFIX):
        return _read_builtin(source.removeprefix(BUILTIN_PREFIX))
    return _read_file(Path(source).expanduser())


def load_prompts(config: PromptsConfig) -> list[Prompt]:
    """Read the configured source, order it, and keep the first `num_prompts`.

    `order: shuffled` shuffles with `random.Random(config.seed)`, so a seed always
    gives the same selection; `num_prompts: null` keeps every prompt.

    Args:
        config: The `prompts` section of an experiment config.

    Returns:
        The prompts to run, in run order.

    Raises:
        PromptsError: The source cannot be read, or holds fewer prompts than
            `num_prompts`.

    """
    prompts = read_prompt_source(config.source)
    if config.order == "shuffled":
        random.Random(config.seed).shuffle(prompts)
    if config.num_prompts is None:
        return prompts
    if config.num_prompts > len(prompts):
        raise PromptsError(
            f"num_prompts ({config.num_prompts}) exceeds the {len(prompts)} prompts in "
            f"{config.source}; lower prompts.num_prompts or set it to null to run them all"
        )
    return prompts[: config.num_prompts]


def _data_dir() -> Traversable:
    return resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR)


def _read_builtin(name: str) -> list[Prompt]:
    available = list_builtin_sets()
    if name not in available:
        names = ", ".join(BUILTIN_PREFIX + n for n in available) or "none"
        raise PromptsError(f"unknown builtin prompt set '{name}'; available: {names}")
    resource = _data_dir().joinpath(f"{name}.jsonl")
    label = BUILTIN_PREFIX + name
    return _parse(_decode(resource.read_bytes(), label), ".jsonl", name, label)


def _read_file(path: Path) -> list[Prompt]:
    label = str(path)
    if not path.exists():
        raise PromptsError(f"prompts file {label} not found; check the path in prompts.source")
    if not path.is_file():
        raise PromptsError(f"prompts source {label} is not a file; give a .jsonl or .txt file")
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise PromptsError(
            f"prompts file {label} has an unknown extension '{path.suffix}'; "
            "use .jsonl (one JSON object per line) or .txt (one prompt per line)"
        )
    size_bytes = path.stat().st_size
    if size_bytes > MAX_FILE_BYTES:
        raise PromptsError(
            f"prompts file {label} is larger than the {MAX_FILE_BYTES // 2**20} MiB limit "
            f"({size_bytes} bytes); keep only the prompts you will run"
        )
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PromptsError(f"prompts file {label} cannot be read: {e.strerror}") from e
    return _parse(_decode(data, label), suffix, path.stem, label)


def _decode(data: bytes, label: str) -> str:
    if b"\x00" in data:
        raise PromptsError(f"prompts file {label} is binary; give a UTF-8 .jsonl or .txt file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PromptsError(
            f"prompts file {label} is not UTF-8 text (invalid byte at offset {e.start}); "
            "re-save it as UTF-8"
        ) from e


def _parse(text: str, suffix: str, stem: str, label: str) -> list[Prompt]:
    numbered = _parse_jsonl(text, stem, label) if suffix == ".jsonl" else _parse_txt(text, stem)
    if not numbered:
        raise PromptsError(f"prompts file {label} holds no prompts; add at least one")
    _check_unique_ids(numbered, label)
    return [prompt for _, prompt in numbered]


def _non_blank_lines(text: str) -> Iterator[tuple[int, str]]:
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield line_no, line


def _parse_txt(text: str, stem: str) -> list[tuple[int, Prompt]]:
    return [
        (line_no, Prompt(id=f"{stem}-{line_no}", text=line.strip()))
        for line_no, line in _non_blank_lines(text)
    ]


def _parse_jsonl(text: str, stem: str, label: str) -> list[tuple[int, Prompt]]:
    return [
        (line_no, _prompt_from_line(line, f"{stem}-{line_no}", f"{label}:{line_no}"))
        for line_no, line in _non_blank_lines(text)
    ]


def _prompt_from_line(line: str, default_id: str, where: str) -> Prompt:
    record = _json_object(line, where)
    return Prompt(
        id=_record_id(record, default_id, where),
        text=_record_text(record, where),
        task=_record_task(record, where),
    )


def _json_object(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise PromptsError(
            f"{where}: invalid JSON ({e.msg}); write one JSON object per line"
        ) from e
    if not isinstance(record, dict):
        raise PromptsError(
            f'{where}: expected a JSON object like {{"prompt": "..."}}, got {type(record).__name__}'
        )
    return record


def _record_text(record: dict[str, Any], where: str) -> str:
    key = next((k for k in _TEXT_KEYS if k in record), None)
    if key is None:
        raise PromptsError(f'{where}: no prompt text; put it under "prompt" (or "text")')
    text = record[key]
    if not isinstance(text, str):
        raise PromptsError(f'{where}: "{key}" must be a string, got {type(text).__name__}')
    if not text.strip():
        raise PromptsError(f'{where}: "{key}" is empty; give every prompt some text')
    return text


def _record_id(record: dict[str, Any], default: str, where: str) -> str:
    value = record.get("id")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise PromptsError(f'{where}: "id" must be a non-empty string or an integer')
    return str(value)


def _record_task(record: dict[str, Any], where: str) -> str | None:
    value = record.get("task")
    if value is not None and not isinstance(value, str):
        raise PromptsError(f'{where}: "task" must be a string, got {type(value).__name__}')
    return value


def _check_unique_ids(numbered: list[tuple[int, Prompt]], label: str) -> None:
    first_line: dict[str, int] = {}
    for line_no, prompt in numbered:
        if prompt.id in first_line:
            raise PromptsError(
                f"{label}:{line_no}: duplicate prompt id '{prompt.id}' (first on line "
                f"{first_line[prompt.id]}); give every prompt a unique id"
            )
        first_line[prompt.id] = line_no
