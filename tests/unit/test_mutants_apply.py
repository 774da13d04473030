"""Every mutant of bench/mutants.py still applies: a refactor that moves its snippet
would leave `make mutation` unable to inject it."""

from __future__ import annotations

import sys

from llem_testing import REPO

sys.path.insert(0, str(REPO / "bench"))
import mutants  # noqa: E402


def test_every_mutants_snippet_occurs_once_and_its_tests_exist() -> None:
    found = list(mutants.MUTANTS)
    assert len(found) > 50
    problems = [
        f"{m.name}: {edit.path} holds its snippet {text.count(edit.old)} times"
        for m in found
        for edit in m.edits
        if (text := (REPO / edit.path).read_text()).count(edit.old) != 1
    ]
    problems += [
        f"{m.name}: no test {test}"
        for m in found
        for test in m.tests
        if not (REPO / test.split("::")[0]).exists()
    ]
    assert not problems, problems
