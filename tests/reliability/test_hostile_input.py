"""Hostile or broken input to the real `llem` command: one clear line, exit code 2.

Each case builds its input in a fresh folder, runs the command as a user would, and
expects exit code 2, one `error:` line naming the problem, no traceback, and nothing
created under the results root. (Damaged experiments, tampered markers and truncated
results are in `tests/integration/test_aggregate_faults.py`.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from faults import assert_one_error_line
from llem_testing import run_llem, tiny_config_dict, write_yaml

Case = Callable[[Path], list[str]]


def config_with(root: Path, **sections: object) -> Path:
    data = tiny_config_dict(root / "results")
    for key, value in sections.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return write_yaml(root / "bad.yaml", data)


def tiny_text(root: Path) -> str:
    """The tiny config as YAML text, with `generation` and `measurement` left to the test."""
    data = tiny_config_dict(root / "results")
    del data["generation"], data["measurement"]
    return yaml.safe_dump(data, sort_keys=False)


def config_text(root: Path, text: str | bytes) -> Path:
    path = root / "bad.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def prompts_file(root: Path, name: str, content: bytes) -> Path:
    (root / name).write_bytes(content)
    return config_with(root, prompts={"source": str(root / name)})


def alias_bomb() -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{k}: &a{k} [{', '.join([f'*a{k - 1}'] * 10)}]" for k in range(1, 9)]
    return "\n".join([*lines, "name: bomb"])


def outside_symlink(root: Path) -> list[str]:
    """`results/raw/evil` is a symlink to an experiment folder outside the results root."""
    outside = root / "elsewhere" / "raw" / "evil"
    outside.mkdir(parents=True)
    (outside / "experiment.json").write_text("{}")
    (root / "results" / "raw").mkdir(parents=True)
    (root / "results" / "raw" / "evil").symlink_to(outside, target_is_directory=True)
    return ["aggregate", str(root / "results" / "raw" / "evil")]


def broken_manifest(root: Path, content: bytes) -> list[str]:
    experiment_dir = root / "elsewhere" / "raw" / "x_1"
    experiment_dir.mkdir(parents=True)
    (experiment_dir / "experiment.json").write_bytes(content)
    return ["aggregate", str(experiment_dir)]


def run_config(build: Callable[[Path], Path]) -> Case:
    return lambda root: ["run", str(build(root))]


CASES: dict[str, tuple[Case, str]] = {
    "YAML python tag": (
        run_config(lambda r: config_text(r, "!!python/object/apply:os.system ['touch pwned']")),
        "invalid YAML (line 1): could not determine a constructor for the tag",
    ),
    "YAML alias bomb": (run_config(lambda r: config_text(r, alias_bomb())), "an alias bomb?"),
    "YAML nested 100,000 deep": (
        run_config(lambda r: config_text(r, "name: x\nmodel: " + "[" * 10**5 + "]" * 10**5)),
        "values nested too deeply",
    ),
    "config over 1 MiB": (
        run_config(lambda r: config_text(r, "name: x\n" + "# pad\n" * 200_000)),
        "config file is larger than 1048576 bytes",
    ),
    "config not UTF-8": (
        run_config(lambda r: config_text(r, b"name: \xff\xfe\x00x\n")),
        "config file is not UTF-8 text",
    ),
    "config not a mapping": (
        run_config(lambda r: config_text(r, "- a\n- b\n")),
        "expected a mapping of config sections",
    ),
    "unknown field": (
        run_config(lambda r: config_with(r, generation={"beams": 2})),
        "generation.beams: unknown field",
    ),
    "wrong type": (
        run_config(lambda r: config_with(r, generation={"batch_size": "eight"})),
        "generation.batch_size: Input should be a valid integer",
    ),
    "batch size 0": (
        run_config(lambda r: config_with(r, generation={"batch_size": 0})),
        "generation.batch_size: Input should be greater than or equal to 1",
    ),
    "sample interval 0 ms": (
        run_config(lambda r: config_with(r, measurement={"energy": {"sample_interval_ms": 0}})),
        "measurement.energy.sample_interval_ms: Input should be greater than or equal to 1",
    ),
    "10^9 prompts": (
        run_config(lambda r: config_with(r, prompts={"num_prompts": 10**9})),
        "prompts.num_prompts: Input should be less than or equal to 1000000",
    ),
    "negative processes": (
        run_config(lambda r: config_with(r, processes=-1)),
        "processes: Input should be greater than or equal to 1",
    ),
    "config name escaping": (
        run_config(lambda r: config_with(r, name="../../etc")),
        "name: String should match pattern",
    ),
    "key given twice": (
        run_config(lambda r: config_text(r, tiny_text(r) + "seed: 1\nseed: 2\n")),
        "invalid YAML (line 9): key 'seed' given twice (first on line 8)",
    ),
    "max_new_tokens: yes": (
        run_config(lambda r: config_text(r, tiny_text(r) + "generation: {max_new_tokens: yes}\n")),
        "generation.max_new_tokens: Input should be a valid integer, not a boolean",
    ),
    "batch_size: on": (
        run_config(lambda r: config_text(r, tiny_text(r) + "generation: {batch_size: on}\n")),
        "generation.batch_size: Input should be a valid integer, not a boolean",
    ),
    "do_sample: 1": (
        run_config(lambda r: config_with(r, generation={"do_sample": 1})),
        "generation.do_sample: Input should be a valid boolean",
    ),
    "temperature: .nan": (
        run_config(lambda r: config_text(r, tiny_text(r) + "generation: {temperature: .nan}\n")),
        "generation.temperature: NaN and infinity are not allowed",
    ),
    "cpu_tdp_w: .inf": (
        run_config(
            lambda r: config_text(r, tiny_text(r) + "measurement: {energy: {cpu_tdp_w: .inf}}\n")
        ),
        "measurement.energy.cpu_tdp_w: NaN and infinity are not allowed",
    ),
    "seed 2^64": (
        run_config(lambda r: config_with(r, seed=2**64)),
        "seed: Input should be less than or equal to 4294967295",
    ),
    "prompts.seed 2^63": (
        run_config(lambda r: config_with(r, prompts={"seed": 2**63})),
        "prompts.seed: Input should be less than or equal to 4294967295",
    ),
    "top_k 2^63": (
        run_config(lambda r: config_with(r, generation={"top_k": 2**63})),
        "generation.top_k: Input should be less than or equal to 10000000",
    ),
    "a bad --set is blamed on the override": (
        lambda r: ["run", str(config_with(r)), "--set", "generation.batch_size=on"],
        "error: --set generation.batch_size=on: generation.batch_size: Input should be a valid",
    ),
    "override without a value": (
        lambda r: ["run", str(config_with(r)), "--set", "generation.batch_size"],
        "expected dotted.path=value",
    ),
    "markup in a path": (
        lambda r: ["run", str(r / "[/bold]" / "nope.yaml")],
        "[/bold]/nope.yaml: config file not found",
    ),
    "prompts file empty": (
        run_config(lambda r: prompts_file(r, "p.txt", b"\n\n")),
        "holds no prompts",
    ),
    "prompts file binary": (
        run_config(lambda r: prompts_file(r, "p.jsonl", b'{"prompt": "a"}\n\x00\x01\x02')),
        "is binary",
    ),
    "prompts file not UTF-8": (
        run_config(lambda r: prompts_file(r, "p.txt", b"caf\xe9\n")),
        "is not UTF-8 text (invalid byte at offset 3)",
    ),
    "experiment id with ../": (
        lambda r: ["results", "show", "../../etc", "--results-dir", str(r / "results")],
        "../../etc: no such experiment directory",
    ),
    "experiment id with shell characters": (
        lambda r: ["results", "show", "x;rm -rf", "--results-dir", str(r / "results")],
        "invalid experiment id 'x;rm -rf'",
    ),
    "absolute experiment id": (
        lambda r: ["results", "show", "/etc/passwd", "--results-dir", str(r / "results")],
        "/etc/passwd: not an experiment directory",
    ),
    "symlink out of the results root": (outside_symlink, "points outside"),
    "export through a symlink out": (
        lambda r: ["export", outside_symlink(r)[1], "--csv"],
        "points outside",
    ),
    "manifest not JSON": (
        lambda r: broken_manifest(r, b"\x00\xff garbage"),
        "experiment.json: not valid JSON (truncated or corrupted?)",
    ),
    "manifest of the wrong shape": (
        lambda r: broken_manifest(r, b'{"experiment_id": ["x"], "schema_version": 1}'),
        "experiment.json: invalid ExperimentManifest: experiment_id",
    ),
    "manifest from a newer llem": (
        lambda r: broken_manifest(r, b'{"schema_version": 99}'),
        "schema_version 99 is newer than this llem reads",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_input_is_refused_in_one_line(tmp_path: Path, case: str) -> None:
    build, expected = CASES[case]
    args = build(tmp_path)
    proc = run_llem(*args, cwd=tmp_path)
    assert_one_error_line(proc, expected)
    assert not (tmp_path / "results" / "aggregated").exists()
    assert not (tmp_path / "results" / "exports").exists()
    assert not (tmp_path / "elsewhere" / "aggregated").exists()
    assert not (tmp_path / "elsewhere" / "exports").exists()
    assert not (tmp_path / "pwned").exists()
    raw = tmp_path / "results" / "raw"
    assert not raw.exists() or [p.name for p in raw.iterdir()] in ([], ["evil"])


def test_yaml_tag_in_an_override_is_only_text(tmp_path: Path) -> None:
    path = config_with(tmp_path)
    proc = run_llem(
        "config", "show", path, "--set", "name=!!python/object/apply:os.system ['touch pwned']"
    )
    assert_one_error_line(proc, "name: String should match pattern")
    assert not (tmp_path / "pwned").exists()
    assert yaml.safe_load(path.read_text())["name"] == "tiny"
