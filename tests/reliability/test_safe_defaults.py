"""Safe defaults: remote code off unless asked (then recorded and warned), no pickle,
files created with the user's umask, tokens never written to results or logs."""

from __future__ import annotations

import os
import re
import secrets
import stat
import string
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from faults import quick_config_dict
from llem_testing import REPO, MultiProcessRun, write_yaml

TOKEN = "hf_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(34))
PLAIN_SECRET = "s3cret-" + secrets.token_hex(8)  # not token-shaped: masked as the variable's value


@dataclass(frozen=True)
class RiskyRun:
    """One run with remote code allowed, secrets about, and umask 027."""

    results_dir: Path
    experiment_dir: Path
    proc: subprocess.CompletedProcess


@pytest.fixture(scope="module")
def risky_run(tmp_path_factory: pytest.TempPathFactory) -> RiskyRun:
    root = tmp_path_factory.mktemp("risky")
    config = quick_config_dict(root / "results", model={"trust_remote_code": True})
    path = write_yaml(root / "risky.yaml", config)
    env = {**os.environ, "HF_TOKEN": TOKEN, "HUGGING_FACE_HUB_TOKEN": PLAIN_SECRET}
    # A token on the command line too: set, then reset, so the run itself is unchanged.
    command = [sys.executable, "-m", "llenergymeasure", "run", str(path), "-v"]
    command += ["--set", f"model.revision={TOKEN}", "--set", f"model.revision={PLAIN_SECRET}"]
    command += ["--set", "model.revision=null"]
    proc = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=300, umask=0o027
    )
    assert proc.returncode == 0, proc.stderr
    (experiment_dir,) = (root / "results" / "raw").iterdir()
    return RiskyRun(root / "results", experiment_dir, proc)


def read_json(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def test_remote_code_is_off_by_default(two_process_run: MultiProcessRun) -> None:
    manifest = read_json(two_process_run.experiment_dir / "experiment.json")
    assert manifest["config"]["model"]["trust_remote_code"] is False
    for index in (0, 1):
        result = read_json(two_process_run.experiment_dir / f"process_{index}.json")
        assert result["trust_remote_code"] is False


def test_remote_code_when_asked_is_recorded_and_warned(risky_run: RiskyRun) -> None:
    assert "WARNING trust_remote_code is on: code shipped with builtin:tiny-llama will run" in (
        risky_run.proc.stderr
    )
    assert read_json(risky_run.experiment_dir / "process_0.json")["trust_remote_code"] is True
    manifest = read_json(risky_run.experiment_dir / "experiment.json")
    assert manifest["config"]["model"]["trust_remote_code"] is True


def test_tokens_never_reach_results_or_logs(risky_run: RiskyRun) -> None:
    for secret in (TOKEN, PLAIN_SECRET):
        assert secret not in risky_run.proc.stdout + risky_run.proc.stderr
        for path in risky_run.results_dir.rglob("*"):
            if path.is_file():
                assert secret.encode() not in path.read_bytes(), path
    command = read_json(risky_run.experiment_dir / "experiment.json")["launch_command"]
    assert "model.revision=hf_***" in command and command.count("model.revision=hf_***") == 2


def test_files_are_created_with_the_users_umask(risky_run: RiskyRun) -> None:
    paths = [risky_run.results_dir, *risky_run.results_dir.rglob("*")]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in paths}
    assert modes == {p: 0o750 if p.is_dir() else 0o640 for p in paths}
    assert len(modes) == 1 + 2 + 5 + 1  # root, raw/ and aggregated/, 5 files, the aggregate


# Deserialising with pickle runs code; a result, a cache or a message between ranks must
# never be read that way. `torch.load` is safe only with weights_only=True.
UNSAFE = re.compile(
    r"\bimport pickle\b|\bpickle\.|\bcPickle\b|\bdill\b|\bcloudpickle\b|\bjoblib\b|"
    r"\bshelve\b|\bmarshal\.loads?\b|allow_pickle\s*=\s*True|"
    r"\byaml\.(?:load|unsafe_load|full_load)\(|Loader=yaml\.(?:Loader|UnsafeLoader|FullLoader)|"
    r"\bbroadcast_object_list\b|\bgather_object\b|\bscatter_object_list\b"
)
TORCH_LOAD = re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)")


def test_no_pickle_anywhere_in_the_package() -> None:
    offenders = []
    for path in sorted((REPO / "src" / "llenergymeasure").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if UNSAFE.search(line) or TORCH_LOAD.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_builtin_model_is_stored_as_safetensors(two_process_run: MultiProcessRun) -> None:
    from llenergymeasure.models import llem_cache_dir

    weights = [p.name for p in (llem_cache_dir() / "models").rglob("*") if p.is_file()]
    assert any(name.endswith(".safetensors") for name in weights), weights
    assert not [n for n in weights if n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt"))]
