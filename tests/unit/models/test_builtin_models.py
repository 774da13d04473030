from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llenergymeasure.errors import ModelNotFound
from llenergymeasure.models import llem_cache_dir, resolve_model
from llenergymeasure.models.builtin import STAMP_NAME, tiny_corpus

TINY = "builtin:tiny-llama"


def test_cache_dir_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLEM_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert llem_cache_dir() == Path.home() / ".cache" / "llenergymeasure"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert llem_cache_dir() == tmp_path / "xdg" / "llenergymeasure"
    monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / "llem"))
    assert llem_cache_dir() == tmp_path / "llem"


def test_tiny_llama_builds_into_the_cache(llem_cache: Path) -> None:
    started = time.perf_counter()
    resolved = resolve_model(TINY)
    assert time.perf_counter() - started < 30
    assert resolved.name == TINY
    assert resolved.source == "builtin"
    path = Path(resolved.path)
    assert path == llem_cache / "models" / "tiny-llama"
    for name in ("config.json", "model.safetensors", "tokenizer.json", STAMP_NAME):
        assert (path / name).is_file(), name
    assert not list(path.parent.glob(".tiny-llama.build-*"))


def test_tiny_llama_loads_and_generates(llem_cache: Path) -> None:
    path = resolve_model(TINY).path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.num_hidden_layers == 2
    assert model.config.hidden_size == 64
    assert model.config.num_key_value_heads == 2
    assert model.config.vocab_size == len(tokenizer)
    assert 900 <= len(tokenizer) <= 1000
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<s>", "</s>")
    assert (tokenizer.pad_token, tokenizer.unk_token) == ("<pad>", "<unk>")
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id

    batch = tokenizer(["The old farmer", "A cat"], return_tensors="pt", padding=True)
    assert batch["input_ids"][0, 0].item() == tokenizer.bos_token_id
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=6, min_new_tokens=6, do_sample=False)
    assert out.shape == (2, batch["input_ids"].shape[1] + 6)
    assert isinstance(tokenizer.decode(out[0], skip_special_tokens=True), str)


def test_tiny_tokenizer_round_trips_english(llem_cache: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(resolve_model(TINY).path)
    text = tiny_corpus()[0]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) < len(text) / 2  # merges were learnt: fewer tokens than bytes
    assert tokenizer.decode(ids) == text


def test_tiny_llama_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = []
    for name in ("first", "second"):
        monkeypatch.setenv("LLEM_CACHE_DIR", str(tmp_path / name))
        paths.append(Path(resolve_model(TINY).path))
    first, second = paths
    assert first != second
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_tiny_llama_is_reused_from_the_cache(llem_cache: Path) -> None:
    stamp = Path(resolve_model(TINY).path) / STAMP_NAME
    mtime_ns = stamp.stat().st_mtime_ns
    time.sleep(0.05)
    started = time.perf_counter()
    again = resolve_model(TINY)
    assert time.perf_counter() - started < 0.5
    assert (Path(again.path) / STAMP_NAME).stat().st_mtime_ns == mtime_ns


def test_partial_build_without_stamp_is_rebuilt(llem_cache: Path) -> None:
    partial = llem_cache / "models" / "tiny-llama"
    partial.mkdir(parents=True)
    (partial / "config.json").write_text("{}")  # a build killed before the stamp
    killed_tmp = llem_cache / "models" / ".tiny-llama.build-killed"
    killed_tmp.mkdir()

    path = Path(resolve_model(TINY).path)

    assert path == partial
    assert (path / STAMP_NAME).is_file()
    assert (path / "model.safetensors").is_file()
    assert AutoModelForCausalLM.from_pretrained(path).config.num_hidden_layers == 2
    assert not killed_tmp.exists()


def test_two_processes_build_once(llem_cache: Path) -> None:
    code = (
        "from llenergymeasure.models import resolve_model; "
        "from loguru import logger; logger.enable('llenergymeasure'); "
        "print(resolve_model('builtin:tiny-llama').path)"
    )
    src = Path(__file__).resolve().parents[3] / "src"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(llem_cache / "models" / "tiny-llama")}
    builds = sum(err.count("Building builtin:tiny-llama") for _, err in results)
    assert builds == 1


def test_unknown_builtin_lists_known_ones(llem_cache: Path) -> None:
    with pytest.raises(ModelNotFound) as excinfo:
        resolve_model("builtin:gpt-17")
    message = str(excinfo.value)
    assert "builtin:gpt-17" in message
    assert "builtin:smollm2-135m" in message
    assert "builtin:tiny-llama" in message
    assert "\n" not in message
