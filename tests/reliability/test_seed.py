"""`seed` makes sampled runs repeatable: the same seed, the same tokens.

builtin:tiny-llama samples near uniformly from its 1,000 tokens at temperature 100, so
where a sequence draws its end-of-sequence token, and so how many tokens each prompt
gets, depends on every draw. Two real runs with one seed must agree prompt by prompt;
another seed must not (checked for these seeds once, and deterministic since).
"""

from __future__ import annotations

from pathlib import Path

import orjson

from faults import quick_config_dict
from llem_testing import run_llem, write_yaml


def output_tokens(root: Path, seed: int) -> list[tuple[str, int, bool]]:
    """(prompt id, output tokens, stopped by EOS) of each request of a sampled run."""
    config = quick_config_dict(root / "results", seed=seed)
    config["prompts"]["num_prompts"] = 24
    config["prompts"]["truncate"] = True  # the bundled set holds prompts near 2,048 tokens
    config["generation"] = {
        "max_new_tokens": 200,
        "batch_size": 4,
        "do_sample": True,
        "temperature": 100.0,
    }
    config["measurement"]["warmup"] = {"enabled": True, "min_prompts": 2, "max_prompts": 4}
    path = write_yaml(root / f"seed{seed}.yaml", config)
    before = set((root / "results" / "raw").glob("*")) if (root / "results").exists() else set()
    proc = run_llem("run", path, cwd=root)
    assert proc.returncode == 0, proc.stderr
    (experiment_dir,) = set((root / "results" / "raw").glob("*")) - before
    result = orjson.loads((experiment_dir / "process_0.json").read_bytes())
    return [(r["prompt_id"], r["output_tokens"], r["stopped_by_eos"]) for r in result["requests"]]


def test_one_seed_gives_the_same_tokens_and_another_seed_other_ones(tmp_path: Path) -> None:
    first = output_tokens(tmp_path, seed=1)
    assert any(stopped for _, _, stopped in first), "no sequence ended: nothing to compare"
    assert output_tokens(tmp_path, seed=1) == first
    assert output_tokens(tmp_path, seed=2) != first
