"""Problems found before anything is created: by `llem run` and by `llem config validate`.

An unknown model, an uncached hub id, an unavailable explicit energy backend, a missing
or broken `--accelerate-config`: each is one `error:` line and exit code 2, with no
experiment directory created (no baseline measured) and no traceback of accelerate's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, find_rapl_packages

from faults import assert_one_error_line, quick_config_dict
from llem_testing import run_llem, write_yaml


def accelerate_file(text: str) -> Callable[[Path], Path]:
    def write(root: Path) -> Path:
        (root / "acc.yaml").write_text(text)
        return root / "acc.yaml"

    return write


# name: (config sections, accelerate config writer or None, expected line part)
CASES: dict[str, tuple[dict, Callable[[Path], Path] | None, str]] = {
    "unknown builtin": (
        {"model": {"name": "builtin:nope"}},
        None,
        "model.name: unknown builtin model 'builtin:nope': known builtins are builtin:",
    ),
    "hub id not in the cache": (
        {"model": {"name": "nobody-llem/not-a-model"}},
        None,
        "model.name: Model 'nobody-llem/not-a-model' not found: not a builtin",
    ),
    "local directory missing": (
        {"model": {"name": "./no-such-model"}},
        None,
        "model.name: Model './no-such-model': no such local directory",
    ),
    "accelerate config missing": (
        {"processes": 2},
        lambda root: root / "missing.yaml",
        "missing.yaml: no such file",
    ),
    "accelerate config not YAML": (
        {"processes": 2},
        accelerate_file("num_processes: [2\n"),
        "acc.yaml: invalid YAML (line 2)",
    ),
    "accelerate config not a mapping": (
        {"processes": 2},
        accelerate_file("- cpu\n"),
        "acc.yaml: expected a mapping of accelerate settings",
    ),
    "accelerate config accelerate refuses": (
        {"processes": 2},
        accelerate_file("compute_environment: LOCAL_MACHINE\nnum_processes: 2\n"),
        "acc.yaml: accelerate cannot use it: A `distributed_type` must be specified",
    ),
}
if not find_rapl_packages(POWERCAP_ROOT):
    CASES["rapl unavailable"] = (
        {"measurement": {"energy": {"backend": "rapl"}}},
        None,
        "measurement.energy.backend: rapl is unavailable: no readable counter",
    )
if not torch.cuda.is_available():
    CASES["nvml without a GPU"] = (
        {"measurement": {"energy": {"backend": "nvml"}}},
        None,
        "measurement.energy.backend: nvml needs a CUDA device and none is visible",
    )


@pytest.mark.parametrize("command", ["run", "config validate"])
@pytest.mark.parametrize("case", list(CASES))
def test_problems_are_found_before_anything_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, command: str
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sections, accelerate, expected = CASES[case]
    config = quick_config_dict(tmp_path / "results")
    for key, value in sections.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) else value
    path = write_yaml(tmp_path / "c.yaml", config)
    args = [*command.split(), path]
    if accelerate is not None:
        args += ["--accelerate-config", accelerate(tmp_path)]
    proc = run_llem(*args, cwd=tmp_path)
    assert_one_error_line(proc, expected)
    assert not (tmp_path / "results").exists()
