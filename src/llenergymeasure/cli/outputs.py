"""Files a command is told to write: an existing one is kept unless `--force` says otherwise."""

from __future__ import annotations

from pathlib import Path

import typer

FORCE = typer.Option(False, "--force", help="Overwrite the file given with --out.")


def refuse_overwrite(path: Path | None, option: str, force: bool) -> None:
    """Refuse to write over an existing file the user named, unless `force`.

    Files under the results root's own folders (`exports/`, `plots/`), written by llem
    under names it chose, are replaced as before; this is only for a path given by hand.

    Raises:
        ResultsError: `--out report.csv exists; pass --force to overwrite it`.

    """
    from llenergymeasure.errors import ResultsError

    if path is not None and not force and (path.is_file() or path.is_symlink()):
        raise ResultsError(f"{option} {path} exists; pass --force to overwrite it")
