from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM

from llenergymeasure.errors import ModelNotFound
from llenergymeasure.models import ResolvedModel, resolve_model

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
MISSING_ID = "llem-test-org/no-such-model-xyz"


@pytest.fixture
def tiny_dir(llem_cache: Path) -> Path:
    return Path(resolve_model("builtin:tiny-llama").path)


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _cache_snapshot(hf_cache: Path, repo_id: str, source: Path, files: list[str]) -> Path:
    """Lay out a repo in the HF cache the way `hf download` does (snapshot + refs/main)."""
    repo = hf_cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / FAKE_COMMIT
    snapshot.mkdir(parents=True)
    for name in files:
        shutil.copy(source / name, snapshot / name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(FAKE_COMMIT)
    return snapshot


def test_local_directory_with_config(tiny_dir: Path) -> None:
    resolved = resolve_model(str(tiny_dir))
    assert resolved == ResolvedModel(name=str(tiny_dir), path=str(tiny_dir), source="local")


def test_relative_local_directory(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(tiny_dir, tmp_path / "org" / "mymodel")
    monkeypatch.chdir(tmp_path)
    resolved = resolve_model("org/mymodel")  # also a valid hub id: the local dir wins
    assert resolved.source == "local"
    assert resolved.path == str(tmp_path / "org" / "mymodel")


def test_directory_without_config(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="has no config.json") as excinfo:
        resolve_model(str(tmp_path))
    assert "\n" not in str(excinfo.value)


def test_file_is_not_a_model_directory(tmp_path: Path) -> None:
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF")
    with pytest.raises(ModelNotFound, match="is a file"):
        resolve_model(str(weights))


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no such local directory"):
        resolve_model(str(tmp_path / "nowhere"))


def test_hub_cache_snapshot(tiny_dir: Path, hf_cache: Path) -> None:
    files = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]
    snapshot = _cache_snapshot(hf_cache, "llem-test/tiny", tiny_dir, files)
    resolved = resolve_model("llem-test/tiny")
    assert resolved == ResolvedModel(name="llem-test/tiny", path=str(snapshot), source="hub_cache")
    assert resolved == resolve_model("llem-test/tiny", revision=FAKE_COMMIT)
    assert AutoModelForCausalLM.from_pretrained(resolved.path).config.num_hidden_layers == 2


def test_hub_cache_honours_revision(
    tiny_dir: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache_snapshot(hf_cache, "llem-test/tiny", tiny_dir, ["config.json", "model.safetensors"])
    with pytest.raises(ModelNotFound, match="at revision 'v2'"):
        resolve_model("llem-test/tiny", revision="v2")


def test_hub_cache_without_weights_is_not_used(
    tiny_dir: Path, hf_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache_snapshot(hf_cache, "llem-test/tiny", tiny_dir, ["config.json"])
    with pytest.raises(ModelNotFound, match="not in the HF cache"):
        resolve_model("llem-test/tiny")


def test_missing_hub_id_offline(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(ModelNotFound) as excinfo:
        resolve_model(MISSING_ID)
    assert time.perf_counter() - started < 5
    message = str(excinfo.value)
    assert "\n" not in message
    for tried in ("not a builtin", "no local directory", "not in the HF cache", "HF_HUB_OFFLINE"):
        assert tried in message
    assert "builtin:smollm2-135m" in message
    assert f"hf download {MISSING_ID}" in message


def test_missing_hub_id_fails_fast_online(hf_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = time.perf_counter()
    with pytest.raises(ModelNotFound) as excinfo:
        resolve_model(MISSING_ID)
    assert time.perf_counter() - started < 15
    message = str(excinfo.value)
    assert "\n" not in message
    assert "not in the HF cache" in message
    assert "hub" in message


def test_invalid_name(hf_cache: Path) -> None:
    with pytest.raises(ModelNotFound, match="not a valid HuggingFace id"):
        resolve_model("no such model!")
