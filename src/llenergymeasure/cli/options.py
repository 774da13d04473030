"""Options that mean the same in every command, defined once.

- `--results-dir`: the results root, where an experiment id is looked up and where
  llem writes its own outputs (`exports/`, `plots/`); default `defaults.RESULTS_DIR`,
  the default of the config's `results_dir`.
- an experiment argument: its id (under `--results-dir`) or its directory
  `results/raw/<id>`.
- `--csv`: a flag, write CSV; the file is `--out`, else one llem names under
  `<results-dir>/exports/`.
"""

from __future__ import annotations

import typer

from llenergymeasure.defaults import RESULTS_DIR as DEFAULT_RESULTS_DIR

RESULTS_DIR = typer.Option(
    DEFAULT_RESULTS_DIR,
    "--results-dir",
    help="Results root: experiment ids are looked up in it, outputs written under it.",
)
EXPERIMENT_HELP = (
    "Experiment id (under --results-dir), its directory results/raw/<id>, or its "
    "aggregate results/aggregated/<id>.json."
)
EXPERIMENT = typer.Argument(..., help=EXPERIMENT_HELP, show_default=False)
CSV = typer.Option(
    False, "--csv", help="Write CSV: to --out FILE, else under <results-dir>/exports/."
)
