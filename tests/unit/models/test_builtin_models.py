from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llenergymeasure.errors import ModelNotFound
from llenergymeasure.models import llem_cache_dir, resolve_model
from llenergymeasure.models.builtin import RECIPE_VERSION, STAMP_NAME
from llenergymeasure.models.tiny_llama import tiny_corpus

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
        "from llenergymeasure.log import logger; logger.enable('llenergymeasure'); "
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


def test_the_test_run_never_uses_the_users_cache(run_model_cache: Path) -> None:
    assert llem_cache_dir() == run_model_cache
    assert not run_model_cache.is_relative_to(Path.home() / ".cache")


@pytest.fixture
def log_lines() -> list[str]:
    from llenergymeasure.log import logger

    lines: list[str] = []
    logger.enable("llenergymeasure")
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name} {m.record['message']}"))
    yield lines
    logger.remove(sink)
    logger.disable("llenergymeasure")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ("model.safetensors", "model.safetensors is missing"),
        ("config.json", "config.json is missing"),
        ("generation_config.json", "generation_config.json is missing"),
    ],
)
def test_a_build_missing_a_file_is_detected_and_rebuilt(
    llem_cache: Path, log_lines: list[str], damage: str, reason: str
) -> None:
    path = Path(resolve_model(TINY).path)
    original = (path / damage).read_bytes()
    (path / damage).unlink()

    again = Path(resolve_model(TINY).path)

    assert (again / damage).read_bytes() == original
    warnings = [line for line in log_lines if line.startswith("WARNING")]
    assert len(warnings) == 1, log_lines
    assert "Rebuilding builtin:tiny-llama" in warnings[0] and reason in warnings[0]
    assert AutoModelForCausalLM.from_pretrained(again).config.num_hidden_layers == 2


def test_a_truncated_weight_file_is_detected_and_rebuilt(
    llem_cache: Path, log_lines: list[str]
) -> None:
    path = Path(resolve_model(TINY).path)
    weights = path / "model.safetensors"
    size = weights.stat().st_size
    with open(weights, "r+b") as f:
        f.truncate(size // 2)

    resolve_model(TINY)

    assert weights.stat().st_size == size
    assert any(f"has {size // 2} bytes, not {size}" in line for line in log_lines), log_lines


def test_a_stamp_of_another_recipe_version_triggers_a_rebuild(
    llem_cache: Path, log_lines: list[str]
) -> None:
    path = Path(resolve_model(TINY).path)
    stamp = path / STAMP_NAME
    old = orjson.loads(stamp.read_bytes())
    stamp.write_bytes(orjson.dumps({**old, "recipe_version": RECIPE_VERSION - 1}))

    resolve_model(TINY)

    assert orjson.loads(stamp.read_bytes())["recipe_version"] == RECIPE_VERSION
    assert any(f"recipe version {RECIPE_VERSION - 1}" in line for line in log_lines), log_lines


def test_the_stamp_lists_every_file_with_its_size(llem_cache: Path) -> None:
    path = Path(resolve_model(TINY).path)
    files = orjson.loads((path / STAMP_NAME).read_bytes())["files"]
    on_disk = {p.name: p.stat().st_size for p in path.iterdir() if p.name != STAMP_NAME}
    assert files == on_disk
    assert {"config.json", "generation_config.json", "model.safetensors"} <= set(files)
