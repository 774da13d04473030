"""`llem report ID_OR_PATH | --campaign NAME [--out FILE.html]`: a self-contained HTML page.

```
llem report ID                 results/raw/<id>/report.html
llem report results/raw/<id>   the same, the results root taken from the path
llem report --campaign NAME    results/campaigns/<name>/report.html
```
"""

from __future__ import annotations

from pathlib import Path

import typer

from llenergymeasure.cli.console import console
from llenergymeasure.cli.options import EXPERIMENT_HELP, RESULTS_DIR
from llenergymeasure.cli.outputs import FORCE, refuse_overwrite


def report(
    experiment: str | None = typer.Argument(
        None,
        metavar="ID_OR_PATH",
        help=EXPERIMENT_HELP,
        show_default=False,
    ),
    campaign: str | None = typer.Option(
        None, "--campaign", help="Report on this campaign instead of one experiment."
    ),
    results_dir: Path = RESULTS_DIR,
    out: Path | None = typer.Option(
        None, "--out", help="HTML file to write; default: beside the experiment or campaign."
    ),
    force: bool = FORCE,
) -> None:
    """Write one HTML page that opens offline: question, figures, warnings, how to rerun."""
    from llenergymeasure.errors import ResultsError

    if (experiment is None) == (campaign is None):
        raise ResultsError("name one experiment (ID or results/raw/<id>) or --campaign NAME")
    refuse_overwrite(out, "--out", force)
    if campaign is not None:
        from llenergymeasure.results.campaign_report import campaign_report, default_report_path
        from llenergymeasure.results.layout import ResultsLayout
        from llenergymeasure.results.report import write_report

        layout = ResultsLayout(results_dir)
        document = campaign_report(layout, campaign)
        path = write_report(document, out or default_report_path(layout, campaign))
    else:
        from llenergymeasure.results.report import experiment_report, find_experiment, write_report

        target = find_experiment(experiment, results_dir)
        document = experiment_report(target)
        path = write_report(document, out or target.default_report_path)
    console.print(f"wrote {path}", markup=False, highlight=False, soft_wrap=True)
