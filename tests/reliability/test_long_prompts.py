"""A prompt longer than the model's context: refused before anything runs, or cut.

builtin:tiny-llama has 2,048 positions. A prompt of about 3,000 tokens used to run
warmup on it anyway; now `llem run` names the prompt and creates nothing, unless
`prompts.truncate: true`, which cuts the prompt's start and says so in the result.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from faults import assert_one_error_line, quick_config_dict
from llem_testing import run_llem, write_yaml

CONTEXT = 2048


def long_prompts_config(root: Path, **prompts: object) -> Path:
    source = root / "long.txt"
    source.write_text("a short prompt\n" + "hello " * 3000 + "\n")
    config = quick_config_dict(root / "results")
    config["prompts"] = {"source": str(source), "num_prompts": None, **prompts}
    config["generation"]["max_new_tokens"] = 4
    return write_yaml(root / "long.yaml", config)


def test_a_prompt_longer_than_the_context_is_refused_by_name(tmp_path: Path) -> None:
    path = long_prompts_config(tmp_path)
    for command in (["run"], ["config", "validate"]):
        proc = run_llem(*command, path, cwd=tmp_path)
        line = assert_one_error_line(proc, "prompts: prompt 'long-2' is ")
        assert f"exceeds the {CONTEXT} positions of builtin:tiny-llama" in line, line
        assert "prompts.truncate: true" in line
        assert not (tmp_path / "results").exists()


def test_max_new_tokens_that_fill_the_context_are_refused(tmp_path: Path) -> None:
    config = quick_config_dict(tmp_path / "results")
    config["generation"]["max_new_tokens"] = CONTEXT
    proc = run_llem("run", write_yaml(tmp_path / "c.yaml", config), cwd=tmp_path)
    assert_one_error_line(proc, f"generation.max_new_tokens: {CONTEXT} leaves no room")
    assert not (tmp_path / "results").exists()


def test_with_truncate_the_prompt_is_cut_and_the_result_says_so(tmp_path: Path) -> None:
    proc = run_llem("run", long_prompts_config(tmp_path, truncate=True), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (experiment_dir,) = (tmp_path / "results" / "raw").iterdir()
    result = orjson.loads((experiment_dir / "process_0.json").read_bytes())
    lengths = {r["prompt_id"]: r["input_tokens"] for r in result["requests"]}
    # The longest generation is the warmup's default of 16 tokens, not max_new_tokens 4.
    assert lengths["long-2"] == CONTEXT - 16
    assert lengths["long-1"] < 50
    (warning,) = [w for w in result["warnings"] if w["code"] == "prompts_truncated"]
    assert warning["message"].startswith("1 prompt(s) longer than ")
