"""Property test: a config with one careless value gets one line from `llem config validate`.

A valid config is written out as YAML with one value spoiled: a key given twice, a
YAML 1.1 boolean (`yes`, `on`, ...) where a number is meant, a number where a boolean
is meant, an integer of 2^63 or more (or below -2^63), NaN or infinity. The real
command (`llenergymeasure.cli.main`, in this process) must end with exit code 2 and
one `error:` line naming the problem, never accept the value nor raise. The fields
are every int, float and bool field of `ExperimentConfig`, found by walking the model.
"""

from __future__ import annotations

import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from llenergymeasure.config.loader import set_dotted
from llenergymeasure.config.models import ExperimentConfig

from llem_testing import run_llem_here, tiny_config_dict

YAML_BOOLEANS = [
    form
    for word in ("yes", "no", "on", "off", "true", "false")
    for form in (word, word.title(), word.upper())
]
NON_FINITE = [".nan", ".NaN", ".inf", "-.inf", ".Inf", "+.INF"]


def leaf_fields(model: type[BaseModel], prefix: str = "") -> dict[str, type]:
    """Dotted name -> int, float or bool, for every such field (optional ones included)."""
    found: dict[str, type] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found |= leaf_fields(annotation, f"{prefix}{name}.")
        elif annotation in (int, float, bool):
            found[f"{prefix}{name}"] = annotation
    return found


FIELDS = leaf_fields(ExperimentConfig)
NUMBERS = sorted(name for name, kind in FIELDS.items() if kind in (int, float))
INTS = sorted(name for name, kind in FIELDS.items() if kind is int)
FLOATS = sorted(name for name, kind in FIELDS.items() if kind is float)
BOOLS = sorted(name for name, kind in FIELDS.items() if kind is bool)
SECTIONS = ["", "model", "prompts", "generation", "measurement", "measurement.energy"]


class Raw(str):
    """A scalar written into the YAML as is (`yes`, `.nan`), not quoted."""


def scalar(value: Any) -> str:
    return value if isinstance(value, Raw) else yaml.safe_dump(value).splitlines()[0]


def render(mapping: dict[str, Any], twice: tuple[str, ...] | None = None, pick: int = 0) -> str:
    """Block YAML of `mapping`; in the section at path `twice`, key number `pick` comes twice."""
    return "\n".join(_lines(mapping, twice, pick, ""))


def _lines(mapping: dict[str, Any], twice: tuple[str, ...] | None, pick: int, indent: str):
    lines: list[str] = []
    for key, value in mapping.items():
        if isinstance(value, dict):
            inner = twice[1:] if twice and twice[0] == key else None
            lines += [f"{indent}{key}:", *_lines(value, inner, pick, indent + "  ")]
        else:
            lines.append(f"{indent}{key}: {scalar(value)}")
    if twice == ():
        key, value = list(mapping.items())[pick % len(mapping)]
        lines.append(f"{indent}{key}: {{}}" if isinstance(value, dict) else f"{indent}{key}: 1")
    return lines


def validate(text: str) -> tuple[int, str]:
    """Exit code and stderr of `llem config validate` on a file holding `text`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        code, _, stderr = run_llem_here("config", "validate", path)
    return code, stderr


def spoiled(field: str, value: str | int) -> dict[str, Any]:
    data = tiny_config_dict(Path("results"))
    set_dotted(data, field, Raw(value) if isinstance(value, str) else value)
    return data


cases = st.one_of(
    st.tuples(
        st.just("boolean for a number"), st.sampled_from(NUMBERS), st.sampled_from(YAML_BOOLEANS)
    ),
    st.tuples(
        st.just("number for a boolean"), st.sampled_from(BOOLS), st.sampled_from(["0", "1", "2"])
    ),
    st.tuples(
        st.just("huge integer"),
        st.sampled_from(INTS),
        st.integers(min_value=2**63, max_value=2**200)
        | st.integers(max_value=-(2**63), min_value=-(2**200)),
    ),
    st.tuples(st.just("not finite"), st.sampled_from(FLOATS), st.sampled_from(NON_FINITE)),
)
EXPECTED = {
    "boolean for a number": "not a boolean (YAML reads yes/no/on/off/true/false as booleans)",
    "number for a boolean": "Input should be a valid boolean",
    "huge integer": "Input should be ",
    "not finite": "NaN and infinity are not allowed",
}


def test_the_walk_finds_the_fields_that_matter() -> None:
    assert {"seed", "prompts.seed", "generation.top_k", "generation.batch_size"} <= set(INTS)
    assert {"generation.temperature", "measurement.energy.cpu_tdp_w"} <= set(FLOATS)
    assert {"generation.do_sample", "model.trust_remote_code"} <= set(BOOLS)


def test_the_unspoiled_config_is_valid() -> None:
    code, stderr = validate(render(tiny_config_dict(Path("results"))))
    assert code == 0, stderr


def assert_one_line(code: int, stderr: str, *expected: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    (line,) = stderr.splitlines()
    assert line.startswith("error: "), line
    for part in expected:
        assert part in line, line


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases)
def test_a_careless_value_is_refused_in_one_line(case: tuple[str, str, str | int]) -> None:
    kind, field, value = case
    code, stderr = validate(render(spoiled(field, value)))
    assert_one_line(code, stderr, f"{field}: ", EXPECTED[kind])
    if kind == "huge integer":
        assert ("less than or equal to" if value > 0 else "greater than or equal to") in stderr


@pytest.mark.parametrize("section", SECTIONS)
@settings(max_examples=10, deadline=None)
@given(pick=st.integers(min_value=0, max_value=20))
def test_a_key_given_twice_is_refused_with_its_lines(section: str, pick: int) -> None:
    config = tiny_config_dict(Path("results"), measurement={"energy": {"backend": "auto"}})
    twice = tuple(section.split(".")) if section else ()
    code, stderr = validate(render(config, twice, pick))
    assert_one_line(code, stderr, "given twice (first on line ", "invalid YAML (line ")
