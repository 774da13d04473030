"""Property tests: whatever text a config file holds, loading ends in a config or a
ConfigError with one line, never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llenergymeasure.config import load_config
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.errors import ConfigError

SECTIONS = ["name", "model", "prompts", "generation", "processes", "measurement", "seed"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(SECTIONS + ["name", "batch_size", "backend", "x"]), inner, max_size=4
        ),
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from(SECTIONS), values, max_size=6)


def load_text(text: str) -> ExperimentConfig | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            return load_config(path)
        except ConfigError as exc:
            assert "\n" not in str(exc)
            return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_structured_garbage_gives_config_or_one_line_error(doc: dict) -> None:
    load_text(yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_gives_config_or_one_line_error(text: str) -> None:
    load_text(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=30), max_size=5))
def test_arbitrary_overrides_give_config_or_one_line_error(overrides: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.yaml"
        path.write_text("name: ok\nmodel: {name: builtin:tiny-llama}\n")
        try:
            load_config(path, overrides)
        except ConfigError as exc:
            assert "\n" not in str(exc)
