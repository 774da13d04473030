"""Text from the user or the disk is printed as it is, never read as console markup.

rich reads `[red]` as a style and `[/bold]` as the end of one (an error when none is
open). A results root named `out[/bold]x[red]` must neither crash a command after the
run has finished nor lose its brackets in what is printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faults import quick_config_dict
from llem_testing import run_llem, write_yaml

MARKUP = "out[/bold]x[red]"


@pytest.fixture(scope="module")
def marked_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A real run whose config file and results root both hold console markup."""
    root = tmp_path_factory.mktemp("markup")
    results = root / MARKUP
    config = write_yaml(root / "c[red].yaml", quick_config_dict(results))
    proc = run_llem("run", config, cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"raw results:        {results / 'raw'}" in proc.stdout, proc.stdout
    (experiment_dir,) = (results / "raw").iterdir()
    return config, results, experiment_dir.name


def test_config_validate_prints_the_path_as_is(marked_run: tuple[Path, Path, str]) -> None:
    config, _, _ = marked_run
    proc = run_llem("config", "validate", config)
    assert proc.returncode == 0, proc.stderr
    assert f"{config}: valid" in proc.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["results", "show", "{id}", "--results-dir", "{results}"],
        ["aggregate", "{results}/raw/{id}"],
        ["export", "{results}/raw/{id}", "--csv"],
        ["results", "list", "--results-dir", "{results}"],
    ],
)
def test_commands_after_the_run_print_paths_as_they_are(
    marked_run: tuple[Path, Path, str], command: list[str]
) -> None:
    _, results, experiment_id = marked_run
    args = [part.format(id=experiment_id, results=results) for part in command]
    proc = run_llem(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    if command[0] != "results" or command[1] != "list":
        assert MARKUP in proc.stdout, proc.stdout
    else:
        assert experiment_id in proc.stdout
