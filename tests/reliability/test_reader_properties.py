"""Property tests: whatever a result file or a config holds, llem reads it or says why in one line.

The readers (`read_model` for the manifest, a process result, a marker and an aggregate;
`verified_process_result`; the config loader) get generated hostile input: random
bytes, random JSON, real files of a real run mutated or cut short, YAML full of tags,
anchors and nesting. Each must return a model or raise the user-facing error (which the
CLI prints as one line, exit code 2), never another exception. The example counts are
the `max_examples` below; `docs/reliability.md` lists them.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from llenergymeasure.config import load_config
from llenergymeasure.domain.experiment import (
    AggregatedResult,
    CompletionMarker,
    ExperimentManifest,
    RawProcessResult,
)
from llenergymeasure.errors import ConfigError, ResultsError
from llenergymeasure.results.aggregation import aggregate_experiment
from llenergymeasure.results.layout import ResultsLayout, read_model
from llenergymeasure.results.verification import verified_process_result

from llem_testing import MultiProcessRun

MODELS: list[type[BaseModel]] = [
    ExperimentManifest,
    RawProcessResult,
    CompletionMarker,
    AggregatedResult,
]
SETTINGS = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)


def field_names(model: type[BaseModel]) -> list[str]:
    return sorted(model.model_fields)


@contextmanager
def written(data: bytes, name: str = "file.json") -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        yield path


def read_or_refuse(data: bytes, model: type[BaseModel]) -> BaseModel | None:
    """The model, or None after a one-line `ResultsError`; any other exception fails."""
    with written(data) as path:
        try:
            return read_model(path, model)
        except ResultsError as exc:
            assert "\n" not in str(exc) and "\r" not in str(exc), str(exc)
            return None


@pytest.fixture(scope="module")
def real_files(two_process_run: MultiProcessRun, tmp_path_factory: pytest.TempPathFactory):
    """The files of a real two-process run (aggregated in a copy), by model."""
    root = tmp_path_factory.mktemp("real") / "results"
    source = two_process_run.experiment_dir
    shutil.copytree(source, root / "raw" / source.name)
    _, aggregated = aggregate_experiment(ResultsLayout(root), source.name)
    experiment_dir = root / "raw" / source.name
    return {
        ExperimentManifest: (experiment_dir / "experiment.json").read_bytes(),
        RawProcessResult: (experiment_dir / "process_0.json").read_bytes(),
        CompletionMarker: (experiment_dir / ".completed_0").read_bytes(),
        AggregatedResult: aggregated.read_bytes(),
    }


def paths_in(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path of a JSON document (the document itself included)."""
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths_in(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths_in(value, (*prefix, index))
    return found


def mutate(document: Any, path: tuple, value: Any, delete: bool) -> Any:
    """A copy of `document` with the value at `path` replaced (or deleted)."""
    if not path:
        return value
    copy = orjson.loads(orjson.dumps(document))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copy


@SETTINGS
@given(data=st.binary(max_size=4096), model=st.sampled_from(MODELS))
def test_random_bytes_are_read_or_refused_in_one_line(data: bytes, model: type) -> None:
    read_or_refuse(data, model)


@SETTINGS
@given(st.data(), st.sampled_from(MODELS))
def test_random_json_objects_are_read_or_refused_in_one_line(
    data: st.DataObject, model: type[BaseModel]
) -> None:
    keys = st.sampled_from([*field_names(model), "schema_version"]) | st.text(max_size=8)
    document = data.draw(st.dictionaries(keys, json_values, max_size=12))
    read_or_refuse(orjson.dumps(document), model)


@SETTINGS
@given(st.data(), st.sampled_from(MODELS), st.booleans())
def test_real_files_with_one_value_changed_are_read_or_refused(
    real_files: dict, data: st.DataObject, model: type[BaseModel], delete: bool
) -> None:
    document = orjson.loads(real_files[model])
    path = data.draw(st.sampled_from(paths_in(document)))
    changed = mutate(document, path, data.draw(json_values), delete and bool(path))
    read_or_refuse(orjson.dumps(changed, option=orjson.OPT_INDENT_2), model)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from(MODELS))
def test_a_real_file_cut_short_is_always_refused(
    real_files: dict, data: st.DataObject, model: type[BaseModel]
) -> None:
    content = real_files[model]
    cut = data.draw(st.integers(min_value=0, max_value=len(content) - 1))
    assert read_or_refuse(content[:cut], model) is None


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_result_changed_after_its_marker_is_always_refused(
    two_process_run: MultiProcessRun, data: st.DataObject
) -> None:
    content = (two_process_run.experiment_dir / "process_0.json").read_bytes()
    offset = data.draw(st.integers(min_value=0, max_value=len(content) - 1))
    byte = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != content[offset]))
    with tempfile.TemporaryDirectory() as tmp:
        experiment_dir = Path(tmp) / two_process_run.experiment_dir.name
        experiment_dir.mkdir()
        shutil.copy(two_process_run.experiment_dir / ".completed_0", experiment_dir)
        (experiment_dir / "process_0.json").write_bytes(
            content[:offset] + bytes([byte]) + content[offset + 1 :]
        )
        with pytest.raises(ResultsError, match="does not match the hash"):
            verified_process_result(experiment_dir, 0, experiment_dir.name)


YAML_VALUES = [
    "!!python/object/apply:os.system ['touch pwned']",
    "!!python/object/new:subprocess.Popen [['touch', 'pwned']]",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!!set {a, b}",
    "!!timestamp 2001-12-14t21:59:43.10-05:00",
    "!!float .nan",
    "!!int 0x7fffffffffffffffffff",
    "!custom thing",
    "&anchor [1, 2, 3]",
    "*anchor",
    "*undefined",
    "{<<: *anchor}",
    "builtin:tiny-llama",
    "0",
    "-1",
    "1e400",
    "~",
    "'\\u0000'",
    '"\\x00\\uffff"',
    "[" * 60 + "]" * 60,
    "[" * 500 + "]" * 500,
    "{a: {b: {c: {d: {e: 1}}}}}",
    "|\n  block\n  text",
    "? complex key\n: value",
    "%YAML 1.1",
    "---",
    "...",
]
YAML_KEYS = [
    "name",
    "model",
    "prompts",
    "generation",
    "processes",
    "measurement",
    "results_dir",
    "seed",
    "model: {name",
    "<<",
    "? x",
]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(YAML_KEYS), st.sampled_from(YAML_VALUES)), min_size=1, max_size=8
    ),
    st.sampled_from(["", "%YAML 1.1\n---\n", "--- !!map\n", "---\n"]),
)
def test_hostile_yaml_gives_a_config_or_one_line_error(
    entries: list[tuple[str, str]], header: str
) -> None:
    text = header + "\n".join(f"{key}: {value}" for key, value in entries)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            load_config(path)
        except ConfigError as exc:
            assert "\n" not in str(exc), str(exc)
        assert not (Path(tmp) / "pwned").exists() and not Path("pwned").exists()
