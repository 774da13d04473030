"""`llem env`: this machine's environment and energy sources, for bug reports."""

from __future__ import annotations

import typer

from llenergymeasure.cli.console import console


def env(
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Print the environment snapshot and which energy sources this machine has."""
    import orjson

    from llenergymeasure.core.energy_inventory import energy_sources
    from llenergymeasure.core.environment import collect_environment

    report = {
        "environment": collect_environment().model_dump(mode="json"),
        "energy_sources": energy_sources(),
    }
    if as_json:
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    _print_text(report)


def _print_text(report: dict) -> None:
    environment, sources = report["environment"], report["energy_sources"]
    console.print(environment["summary_line"], markup=False, highlight=False)
    gpu, host = sources["gpu"], sources["host"]
    console.print(f"GPU energy: NVML {gpu['nvml']}", markup=False, highlight=False)
    if gpu["problem"]:
        console.print(f"  {gpu['problem']}", markup=False, highlight=False)
    for device in gpu["devices"]:
        line = (
            f"  cuda:{device['cuda_ordinal']}: {device['problem']}"
            if "problem" in device
            else f"  cuda:{device['cuda_ordinal']}: {device['name']} {device['uuid']}, "
            f"{device['method']}, power from {device['power_field']}"
        )
        console.print(line, markup=False, highlight=False)
    console.print(f"host energy (auto): {host['auto_uses']}", markup=False, highlight=False)
    for zone in host["rapl_zones"]:
        console.print(f"  RAPL {zone['kind']}: {zone['name']}", markup=False, highlight=False)
    for reason in host["rapl_left_out"]:
        console.print(f"  RAPL left out: {reason}", markup=False, highlight=False)
    console.print(
        f"  estimate: full-load CPU power {host['estimate_full_load_w']:g} W "
        f"({host['estimate_source']})",
        markup=False,
        highlight=False,
    )
