"""Mutation check: inject realistic bugs one at a time and see whether the tests catch them.

Each mutant in `bench/mutants.py` is a bug that would make llem publish a silently wrong
number or lose data: an exact snippet of the source, its replacement, and the tests that
should fail on it. The source and tests are copied once into a scratch directory; each
mutant is applied there alone, its tests run with `PYTHONPATH` pointing at the copy, and
the file is restored before the next one. A mutant is killed when its tests fail,
survived when they pass. A snippet no longer found is an error (the list must follow the
code), and so is a test selection that collects nothing.

Generic tools (mutmut, cosmic-ray) generate operator flips (`<` to `<=`, `+` to `-`) over
whole files: thousands of mutants, most of them equivalent or caught by any test, hours
of CPU on this suite, and none of the specific, multi-line mistakes listed here (the
wrong field in an export, a clock swapped, a phase run in the wrong order). This script
runs a fixed, reviewed list instead, in minutes.

    .venv/bin/python bench/mutation.py [--only SUBSTRING] [--list]

Prints one line per mutant, then the survivors and the score; a run of the whole list
writes `results/bench/mutation.json`. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
from mutants import MUTANTS, Mutant

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "bench" / "mutation.json"
TIMEOUT_S = 600
NO_TESTS_COLLECTED = 5


def main() -> int:
    """Run the selected mutants and print the score; exit 1 on survivors or errors."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args()
    mutants = [m for m in MUTANTS if args.only is None or args.only in m.name]
    if args.list:
        for m in mutants:
            print(f"{m.name}: {m.bug}")
        return 0
    outcomes = [(m, "not-applicable", 0.0, problem) for m in mutants if (problem := missing(m))]
    runnable = [m for m in mutants if not missing(m)]
    with tempfile.TemporaryDirectory(prefix="llem-mutation-") as scratch_dir:
        scratch = Path(scratch_dir)
        copy_tree(scratch)
        check_clean(scratch, runnable)
        for mutant in runnable:
            status, seconds, caught_by = run_mutant(scratch, mutant)
            outcomes.append((mutant, status, seconds, caught_by))
            print(f"{status:>14}  {mutant.name}  ({seconds:.1f} s)  {caught_by}", flush=True)
    return report(outcomes, write_json=args.only is None)


def missing(mutant: Mutant) -> str:
    """Why a mutant cannot be applied to the source as it is now ('' when it can)."""
    for edit in mutant.edits:
        text = (REPO / edit.path).read_text()
        count = text.count(edit.old)
        if count != 1:
            where = "not found" if count == 0 else f"found {count} times"
            return f"{edit.path}: snippet {where}: {edit.old.strip()[:70]!r}"
    return ""


def copy_tree(scratch: Path) -> None:
    """src/, tests/ and pyproject.toml (pytest's settings) into the scratch directory."""
    for name in ("src", "tests"):
        shutil.copytree(REPO / name, scratch / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "pyproject.toml", scratch / "pyproject.toml")


def scratch_env(scratch: Path) -> dict[str, str]:
    """The environment of the test runs: the scratch copy first on the import path."""
    return {**os.environ, "PYTHONPATH": f"{scratch / 'src'}{os.pathsep}{scratch / 'tests'}"}


def check_clean(scratch: Path, mutants: list[Mutant]) -> None:
    """The copy imports from itself, and every selected test passes before any mutation."""
    probe = subprocess.run(
        [sys.executable, "-c", "import llenergymeasure; print(llenergymeasure.__file__)"],
        cwd=scratch,
        env=scratch_env(scratch),
        capture_output=True,
        text=True,
        check=True,
    )
    if not probe.stdout.strip().startswith(str(scratch)):
        sys.exit(f"the scratch copy is not the one imported: {probe.stdout.strip()}")
    files = sorted({arg.split("::")[0] for m in mutants for arg in m.tests if arg.endswith(".py")})
    started = time.monotonic()
    clean = run_pytest(scratch, files)
    if clean.returncode != 0:
        print(clean.stdout[-4000:])
        sys.exit("the tests fail without any mutation: fix them first")
    print(f"{len(files)} test files pass unmutated ({time.monotonic() - started:.0f} s)")


def run_pytest(scratch: Path, selection: tuple[str, ...] | list[str]):
    """pytest on `selection` in the scratch copy, stopping at the first failure."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *selection]
    return subprocess.run(
        command,
        cwd=scratch,
        env=scratch_env(scratch),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def run_mutant(scratch: Path, mutant: Mutant) -> tuple[str, float, str]:
    """Apply the mutant, run its tests, restore the files.

    Returns:
        killed, survived or error; the seconds its tests took; the first failing test.

    """
    originals = {edit.path: (scratch / edit.path).read_text() for edit in mutant.edits}
    for edit in mutant.edits:
        path = scratch / edit.path
        path.write_text(path.read_text().replace(edit.old, edit.new))
    started = time.monotonic()
    caught_by = ""
    try:
        proc = run_pytest(scratch, mutant.tests)
        caught_by = first_failure(proc.stdout)
        status = (
            "error-no-tests"
            if proc.returncode == NO_TESTS_COLLECTED
            else "killed"
            if proc.returncode != 0
            else "survived"
        )
    except subprocess.TimeoutExpired:
        status = "killed-timeout"
    finally:
        for path, text in originals.items():
            (scratch / path).write_text(text)
    return status, time.monotonic() - started, caught_by


def first_failure(output: str) -> str:
    """The test id of pytest's first FAILED or ERROR line ('' when none)."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.split(" - ")[0]
    return ""


def report(outcomes: list[tuple[Mutant, str, float, str]], write_json: bool) -> int:
    """Print the errors, survivors and score; write the JSON of a full run; exit status."""
    errors = [(m, s, p) for m, s, _, p in outcomes if s.startswith(("not-applicable", "error"))]
    for mutant, status, problem in errors:
        print(f"ERROR {status}: {mutant.name}: {problem or 'no test collected'}")
    survivors = [m for m, s, _, _ in outcomes if s == "survived"]
    killed = sum(1 for _, s, _, _ in outcomes if s.startswith("killed"))
    scored = killed + len(survivors)
    score = killed / scored if scored else 0.0
    if survivors:
        print("\nsurvivors:")
        for m in survivors:
            print(f"  {m.name}: {m.bug}" + (f" (left because {m.survives})" if m.survives else ""))
    now = datetime.now(timezone.utc)
    print(
        f"\n{now:%Y-%m-%d %H:%M} UTC on {socket.gethostname()}: {killed} of {scored} mutants "
        f"killed, score {score:.0%}" + (f"; {len(errors)} errors" if errors else "")
    )
    if not write_json:
        return 1 if survivors or errors else 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(
        orjson.dumps(
            {
                "date": now.isoformat(),
                "host": socket.gethostname(),
                "python": platform.python_version(),
                "killed": killed,
                "scored": scored,
                "score": score,
                "mutants": [
                    {"name": m.name, "bug": m.bug, "status": s, "seconds": round(t, 1), "detail": p}
                    for m, s, t, p in outcomes
                ],
            },
            option=orjson.OPT_INDENT_2,
        )
    )
    return 1 if survivors or errors else 0


if __name__ == "__main__":
    sys.exit(main())
