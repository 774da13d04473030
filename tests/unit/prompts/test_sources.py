from __future__ import annotations

import json
from pathlib import Path

import pytest

from llenergymeasure.config.models import PromptsConfig
from llenergymeasure.errors import PromptsError
from llenergymeasure.prompts import Prompt, list_builtin_sets, load_prompts, read_prompt_source
from llenergymeasure.prompts.sources import MAX_FILE_BYTES

TASKS = {"qa", "summarise", "code", "long_context", "reasoning", "creative"}


def _write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _error(source: str | Path) -> str:
    with pytest.raises(PromptsError) as info:
        read_prompt_source(str(source))
    message = str(info.value)
    assert "\n" not in message
    return message


def _config(source: str, **fields: object) -> PromptsConfig:
    return PromptsConfig(source=source, **fields)


# --- the bundled set -------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed() -> list[Prompt]:
    return read_prompt_source("builtin:mixed")


def test_builtin_sets_include_mixed() -> None:
    assert "mixed" in list_builtin_sets()


def test_mixed_is_large_with_unique_ids(mixed: list[Prompt]) -> None:
    assert len(mixed) >= 250
    assert len({p.id for p in mixed}) == len(mixed)
    assert len({p.text for p in mixed}) == len(mixed)
    assert all(p.id.startswith("mixed-") for p in mixed)


def test_mixed_covers_every_task(mixed: list[Prompt]) -> None:
    assert {p.task for p in mixed} == TASKS


def test_mixed_starts_with_a_varied_mix(mixed: list[Prompt]) -> None:
    assert {p.task for p in mixed[:20]} == TASKS


def test_mixed_long_context_prompts_are_long(mixed: list[Prompt]) -> None:
    long = [p for p in mixed if p.task == "long_context"]
    assert len(long) >= 25
    assert all(400 <= len(p.text.split()) <= 1000 for p in long)


def test_mixed_summarise_prompts_hold_a_paragraph(mixed: list[Prompt]) -> None:
    for prompt in (p for p in mixed if p.task == "summarise"):
        _instruction, paragraph = prompt.text.split("\n\n", 1)
        assert 80 <= len(paragraph.split()) <= 200, prompt.id


def test_mixed_prompts_are_non_empty_text(mixed: list[Prompt]) -> None:
    assert all(p.text.strip() == p.text and p.text for p in mixed)


# --- ordering and selection ------------------------------------------------------------


def test_source_order_keeps_file_order(mixed: list[Prompt]) -> None:
    assert load_prompts(_config("builtin:mixed", num_prompts=None)) == mixed


def test_shuffle_is_deterministic_for_a_seed(mixed: list[Prompt]) -> None:
    config = _config("builtin:mixed", num_prompts=None, order="shuffled", seed=7)
    first, second = load_prompts(config), load_prompts(config)
    assert first == second
    assert first != mixed
    assert sorted(first, key=lambda p: p.id) == mixed


def test_shuffle_differs_across_seeds() -> None:
    a = load_prompts(_config("builtin:mixed", num_prompts=None, order="shuffled", seed=1))
    b = load_prompts(_config("builtin:mixed", num_prompts=None, order="shuffled", seed=2))
    assert a != b


def test_num_prompts_truncates(mixed: list[Prompt]) -> None:
    assert load_prompts(_config("builtin:mixed", num_prompts=10)) == mixed[:10]


def test_num_prompts_truncates_after_shuffle() -> None:
    full = load_prompts(_config("builtin:mixed", num_prompts=None, order="shuffled", seed=3))
    head = load_prompts(_config("builtin:mixed", num_prompts=5, order="shuffled", seed=3))
    assert head == full[:5]


def test_num_prompts_equal_to_available_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "two.txt"
    path.write_text("a\nb\n", encoding="utf-8")
    assert len(load_prompts(_config(str(path), num_prompts=2))) == 2


def test_num_prompts_over_available_is_refused(mixed: list[Prompt]) -> None:
    with pytest.raises(PromptsError) as info:
        load_prompts(_config("builtin:mixed", num_prompts=len(mixed) + 200))
    assert str(info.value).startswith(
        f"num_prompts ({len(mixed) + 200}) exceeds the {len(mixed)} prompts in builtin:mixed"
    )


# --- JSONL -----------------------------------------------------------------------------


def test_jsonl_reads_prompt_id_and_task(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "set.jsonl",
        [
            {"id": "a", "prompt": "First?", "task": "qa"},
            {"text": "Second, under text."},
            {"id": 7, "prompt": "Third", "task": None, "extra": "ignored"},
        ],
    )
    assert read_prompt_source(str(path)) == [
        Prompt(id="a", text="First?", task="qa"),
        Prompt(id="set-2", text="Second, under text."),
        Prompt(id="7", text="Third"),
    ]


def test_jsonl_skips_blank_lines_and_numbers_ids_by_line(tmp_path: Path) -> None:
    path = tmp_path / "gaps.jsonl"
    path.write_text('\n{"prompt": "one"}\n   \n{"prompt": "two"}\n\n', encoding="utf-8")
    assert [p.id for p in read_prompt_source(str(path))] == ["gaps-2", "gaps-4"]


def test_jsonl_prefers_prompt_over_text(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "both.jsonl", [{"prompt": "p", "text": "t"}])
    assert read_prompt_source(str(path))[0].text == "p"


def test_jsonl_keeps_unicode_and_accepts_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + '{"prompt": "Résumé à Zürich: 東京"}\n'.encode())
    assert read_prompt_source(str(path))[0].text == "Résumé à Zürich: 東京"


def test_jsonl_keeps_multiline_text(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "multi.jsonl", [{"prompt": "Line one.\n\nLine two."}])
    assert read_prompt_source(str(path))[0].text == "Line one.\n\nLine two."


def test_source_path_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "home.txt").write_text("hello\n", encoding="utf-8")
    assert read_prompt_source("~/home.txt") == [Prompt(id="home-1", text="hello")]


# --- TXT -------------------------------------------------------------------------------


def test_txt_reads_one_prompt_per_non_empty_line(tmp_path: Path) -> None:
    path = tmp_path / "lines.txt"
    path.write_text("What is energy?\n\n  Explain power.  \r\nDefine a joule.", encoding="utf-8")
    assert read_prompt_source(str(path)) == [
        Prompt(id="lines-1", text="What is energy?"),
        Prompt(id="lines-3", text="Explain power."),
        Prompt(id="lines-4", text="Define a joule."),
    ]


def test_txt_extension_is_case_insensitive(tmp_path: Path) -> None:
    path = tmp_path / "upper.TXT"
    path.write_text("hi\n", encoding="utf-8")
    assert read_prompt_source(str(path)) == [Prompt(id="upper-1", text="hi")]


def test_load_prompts_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "few.txt"
    path.write_text("a\nb\nc\n", encoding="utf-8")
    assert [p.text for p in load_prompts(_config(str(path), num_prompts=2))] == ["a", "b"]


# --- errors ----------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    message = _error(path)
    assert str(path) in message and "not found" in message


def test_directory_is_refused(tmp_path: Path) -> None:
    assert str(tmp_path) in _error(tmp_path)


def test_unknown_builtin_lists_the_available_sets() -> None:
    message = _error("builtin:nope")
    assert "'nope'" in message and "builtin:mixed" in message


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text("a,b\n", encoding="utf-8")
    message = _error(path)
    assert str(path) in message and ".csv" in message and ".jsonl" in message


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.txt"])
@pytest.mark.parametrize("content", ["", "\n  \n\t\n"])
def test_empty_file(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    message = _error(path)
    assert str(path) in message and "no prompts" in message


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    message = _error(path)
    assert str(path) in message and "binary" in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("café crème\n".encode("latin-1"))
    message = _error(path)
    assert str(path) in message and "UTF-8" in message


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)
    message = _error(path)
    assert str(path) in message and "64 MiB" in message


@pytest.mark.parametrize("line", ['["a list"]', '"a string"', "42", "null"])
def test_jsonl_line_that_is_not_an_object(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "fine"}\n' + line + "\n", encoding="utf-8")
    message = _error(path)
    assert f"{path}:2:" in message and "JSON object" in message


def test_jsonl_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"prompt": "fine"}\n\n{"prompt": "unterminated\n', encoding="utf-8")
    message = _error(path)
    assert f"{path}:3:" in message and "invalid JSON" in message


def test_jsonl_line_without_text(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "notext.jsonl", [{"id": "x", "question": "Why?"}])
    message = _error(path)
    assert f"{path}:1:" in message and '"prompt"' in message


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_jsonl_empty_prompt_text(tmp_path: Path, text: str) -> None:
    path = _write_jsonl(tmp_path / "blank.jsonl", [{"prompt": "ok"}, {"prompt": text}])
    message = _error(path)
    assert f"{path}:2:" in message and "empty" in message


def test_jsonl_text_that_is_not_a_string(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "num.jsonl", [{"prompt": 12}])
    assert f"{path}:1:" in _error(path)


@pytest.mark.parametrize("bad_id", ["", True, 1.5, ["a"]])
def test_jsonl_invalid_id(tmp_path: Path, bad_id: object) -> None:
    path = _write_jsonl(tmp_path / "ids.jsonl", [{"id": bad_id, "prompt": "p"}])
    message = _error(path)
    assert f"{path}:1:" in message and '"id"' in message


def test_jsonl_invalid_task(tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "task.jsonl", [{"prompt": "p", "task": 3}])
    message = _error(path)
    assert f"{path}:1:" in message and '"task"' in message


def test_duplicate_ids(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "dupes.jsonl",
        [{"id": "a", "prompt": "x"}, {"id": "b", "prompt": "y"}, {"id": "a", "prompt": "z"}],
    )
    message = _error(path)
    assert f"{path}:3:" in message and "'a'" in message and "line 1" in message


def test_explicit_id_colliding_with_a_generated_one(tmp_path: Path) -> None:
    path = _write_jsonl(
        tmp_path / "clash.jsonl", [{"id": "clash-2", "prompt": "x"}, {"prompt": "y"}]
    )
    assert "duplicate prompt id 'clash-2'" in _error(path)


def test_load_prompts_reports_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "gone.txt"
    with pytest.raises(PromptsError, match="gone.txt"):
        load_prompts(_config(str(path)))
