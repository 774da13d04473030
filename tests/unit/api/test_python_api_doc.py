"""Every example in docs/python-api.md runs, in order, as a reader would run them; so
does README's, given the model and inputs of the doc's first example."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "python-api.md"
README = REPO / "README.md"


def blocks(language: str, path: Path = DOC) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", path.read_text(), flags=re.M | re.S)


def test_the_doc_has_examples() -> None:
    assert len(blocks("python")) >= 4 and len(blocks("yaml")) == 1


def test_every_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(blocks("yaml")[0])
    namespace: dict = {}
    for number, code in enumerate(blocks("python")):
        exec(compile(code, f"{DOC.name} example {number + 1}", "exec"), namespace)  # noqa: S102
    assert namespace["m"].done and namespace["m"].energy_j is not None
    assert namespace["answer"].last_measurement.done
    assert [w.name for w in (namespace["first"], namespace["second"])] == ["first", "second"]
    assert (tmp_path / "results" / "aggregated").is_dir()


def test_the_readme_example_runs() -> None:
    (example,) = blocks("python", README)
    namespace: dict = {}
    exec(compile(blocks("python")[0], f"{DOC.name} example 1", "exec"), namespace)  # noqa: S102
    del namespace["m"]
    exec(compile(example, README.name, "exec"), namespace)  # noqa: S102
    assert namespace["m"].done and namespace["m"].energy_j is not None
