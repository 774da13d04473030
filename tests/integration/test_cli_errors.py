"""The real `llem` command: user errors are one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from llem_testing import run_llem, tiny_config_dict, write_yaml


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"generation": {"batch_size": 4, "beams": 2}}, "generation.beams: unknown field"),
        ({"generation": {"batch_size": "eight"}}, "generation.batch_size"),
        ({"prompts": {"source": "missing.jsonl"}}, "prompts.source"),
    ],
)
def test_bad_config_exits_2_naming_the_field(tmp_path: Path, patch: dict, field: str) -> None:
    data = tiny_config_dict(tmp_path / "results")
    for key, value in patch.items():
        data[key] = {**data[key], **value}
    path = write_yaml(tmp_path / "bad.yaml", data)
    proc = run_llem("run", path, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert field in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results" / "raw").exists(), "nothing may be created"


def test_config_validate_and_show(tmp_path: Path, tiny_config_file: Path) -> None:
    ok = run_llem("config", "validate", tiny_config_file)
    assert ok.returncode == 0 and "valid" in ok.stdout
    shown = run_llem("config", "show", tiny_config_file, "--set", "generation.batch_size=2")
    assert shown.returncode == 0
    assert "batch_size: 2" in shown.stdout
    assert "sample_interval_ms: 100" in shown.stdout  # a default the file leaves out
    bad = run_llem("config", "validate", tiny_config_file, "--set", "generation.top_p=3")
    assert bad.returncode == 2 and "generation.top_p" in bad.stderr


def test_unknown_experiment_is_a_user_error(tmp_path: Path) -> None:
    proc = run_llem("results", "show", "nope_1", "--results-dir", tmp_path)
    assert proc.returncode == 2 and f"no experiment nope_1 under {tmp_path}" in proc.stderr
    proc = run_llem("aggregate", tmp_path / "raw" / "nope")
    assert proc.returncode == 2 and "no such experiment" in proc.stderr


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"vllm": {"max_num_seqs": 8}}, "vllm holds options of engine vllm, but engine is "),
        ({"engine": "vllm"}, "engine vllm schedules requests itself: use vllm.max_num_seqs"),
        ({"engine": "vllm", "vllm": {"beams": 2}}, "vllm.beams: unknown field"),
    ],
)
def test_option_of_another_engine_exits_2_naming_it(
    tmp_path: Path, patch: dict, field: str
) -> None:
    # The tiny config sets generation.batch_size, an option of engine transformers only.
    path = write_yaml(tmp_path / "bad.yaml", {**tiny_config_dict(tmp_path / "results"), **patch})
    proc = run_llem("run", path, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert field in lines[0]
    assert not (tmp_path / "results" / "raw").exists(), "nothing may be created"
