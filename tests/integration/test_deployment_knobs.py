"""Deployment knobs on real models: batching, attention kernel, torch.compile, refusals.

Each run is a real experiment whose files are read back; the refusal goes through the
real `llem run` in a child process.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.engines.transformers import TransformersEngine
from llenergymeasure.domain.experiment import AggregatedResult
from llenergymeasure.orchestration.launcher import ExperimentOutcome, run_experiment
from llenergymeasure.prompts import load_prompts
from llenergymeasure.results.exporters import export_aggregated_to_csv
from llenergymeasure.results.layout import read_model

from llem_testing import one_torch_thread, run_llem, tiny_config_dict, write_yaml

QUIET = {
    "warmup": {"enabled": False},
    "baseline": {"enabled": False},
    "timeseries": {"enabled": False},
}


def run_outcome(tmp_path: Path, **sections) -> ExperimentOutcome:
    """One experiment of the tiny config with `sections` changed."""
    config = validate_config(tiny_config_dict(tmp_path / "results", **sections))
    with one_torch_thread():
        return run_experiment(config)


def run(tmp_path: Path, **sections) -> dict:
    """One experiment; its process result as written to disk."""
    outcome = run_outcome(tmp_path, **sections)
    return orjson.loads((outcome.experiment_dir / "process_0.json").read_bytes())


@pytest.fixture(scope="module")
def smollm2_by_batching(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """The first 4 bundled prompts (45, 62, 192, 41 tokens) on SmolLM2, greedy, 2 a batch.

    static pairs 45+62 and 192+41 (508 prompt positions), sorted 192+62 and 45+41 (474).
    """
    root = tmp_path_factory.mktemp("batching")
    return {
        name: run(
            root / name,
            model={"name": "builtin:smollm2-135m"},
            prompts={"source": "builtin:mixed", "num_prompts": 4},
            generation={"batch_size": 2, "max_new_tokens": 4, "batching": name},
            measurement=QUIET,
        )
        for name in ("static", "sorted")
    }


@pytest.mark.slow
def test_sorted_pads_less_than_static_with_the_same_requests(
    smollm2_by_batching: dict[str, dict],
) -> None:
    static, ordered = smollm2_by_batching["static"], smollm2_by_batching["sorted"]
    assert ordered["padding"]["prompt_positions"] < static["padding"]["prompt_positions"]
    assert ordered["padding"]["padding_share"] < static["padding"]["padding_share"]
    assert ordered["deployment"]["batching"] == "sorted"

    def by_prompt(result: dict) -> dict[str, tuple[int, int]]:
        return {r["prompt_id"]: (r["input_tokens"], r["output_tokens"]) for r in result["requests"]}

    # Each record maps back to its prompt: the same prompts, each with its own tokens.
    assert by_prompt(ordered) == by_prompt(static)
    assert ordered["output_tokens"] == static["output_tokens"]
    # Runs in another order: the longest prompt first.
    assert [r["prompt_id"] for r in ordered["requests"]] != [
        r["prompt_id"] for r in static["requests"]
    ]


@pytest.mark.slow
def test_padding_share_is_padded_over_real_prompt_positions(
    smollm2_by_batching: dict[str, dict],
) -> None:
    for result in smollm2_by_batching.values():
        padding = result["padding"]
        assert padding["prompt_real_tokens"] == result["input_tokens"]
        assert padding["output_real_tokens"] == result["output_tokens"]
        padded = padding["prompt_positions"] - padding["prompt_real_tokens"]
        assert padding["padding_share"] == pytest.approx(padded / result["input_tokens"])


def test_token_budget_batches_never_exceed_the_budget(tmp_path: Path) -> None:
    """The engine's own batches on the real tokenizer: rows x width within the budget."""
    config = validate_config(
        tiny_config_dict(
            tmp_path,
            prompts={"num_prompts": 40},
            generation={"batch_size": 8, "batching": "token_budget", "max_batch_tokens": 1_000},
        )
    )
    engine = TransformersEngine(config, "cpu")
    engine.load()
    prompts = [p for p in load_prompts(config.prompts) if len(p.text) < 2_000]
    workload = engine.prepare(prompts, None)
    shapes = [batch.inputs["input_ids"].shape for batch in workload.items]
    assert len(shapes) > 1
    assert all(rows * width <= 1_000 and rows <= 8 for rows, width in shapes)
    assert sorted(p.id for b in workload.items for p in b.prompts) == sorted(p.id for p in prompts)


@pytest.mark.parametrize("kernel", ["eager", "sdpa"])
def test_attention_kernel_is_recorded_as_requested_and_effective(
    tmp_path: Path, kernel: str
) -> None:
    outcome = run_outcome(
        tmp_path,
        model={"name": "builtin:tiny-llama", "attn_implementation": kernel},
        prompts={"num_prompts": 4},
        measurement=QUIET,
    )
    result = orjson.loads((outcome.experiment_dir / "process_0.json").read_bytes())
    deployment = result["deployment"]
    assert deployment["attn_implementation_requested"] == kernel
    assert deployment["attn_implementation_effective"] == kernel
    assert deployment["dtype_effective"] == "float32"
    assert deployment["cache_implementation_effective"] == "DynamicCache"
    assert "deployment_fallback" not in {w["code"] for w in result["warnings"]}
    # The CSV export reads the same figures back.
    aggregate = read_model(outcome.aggregated_path, AggregatedResult)
    rows = csv_rows(export_aggregated_to_csv([aggregate], tmp_path / "a.csv"))
    assert rows[0]["deployment_attn_implementation_effective"] == kernel
    assert float(rows[0]["padding_share"]) == pytest.approx(result["padding"]["padding_share"])


def test_static_cache_is_what_generate_used(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        prompts={"num_prompts": 4},
        generation={"cache_implementation": "static", "max_new_tokens": 4},
        measurement=QUIET,
    )
    assert result["deployment"]["cache_implementation_effective"] == "StaticCache"
    assert result["output_tokens"] > 0


@pytest.mark.slow
def test_compile_time_is_recorded_and_outside_the_energy_window(tmp_path: Path) -> None:
    """Dynamo tracing without kernel generation (backend eager) keeps this cheap."""
    result = run(
        tmp_path,
        model={"name": "builtin:tiny-llama", "torch_compile": {"backend": "eager"}},
        prompts={"num_prompts": 4},
        generation={"batch_size": 4, "max_new_tokens": 4},
        measurement={**QUIET, "warmup": {"min_prompts": 1, "max_prompts": 2, "window_size": 2}},
    )
    deployment = result["deployment"]
    assert deployment["torch_compile_requested"] == "eager:default"
    assert deployment["torch_compile_effective"] is True
    assert deployment["compiled_graphs"] > 0 and deployment["compile_s"] > 0
    # Compilation ended before the window opened, and the window compiled nothing more.
    assert deployment["compile_end_unix_s"] <= result["energy_window_start_unix_s"]
    assert deployment["window_compiled_graphs"] == 0


def test_flash_attention_on_the_cpu_is_refused_before_anything_runs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    config = tiny_config_dict(
        results, model={"name": "builtin:tiny-llama", "attn_implementation": "flash_attention_2"}
    )
    proc = run_llem("run", write_yaml(tmp_path / "fa.yaml", config))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "model.attn_implementation: flash_attention_2" in errors[0]
    assert "CUDA" in errors[0]
    assert not results.exists()


def test_a_prompt_over_the_token_budget_is_refused_naming_the_field(tmp_path: Path) -> None:
    results = tmp_path / "results"
    config = tiny_config_dict(
        results, generation={"batching": "token_budget", "max_batch_tokens": 20}
    )
    proc = run_llem("run", write_yaml(tmp_path / "tb.yaml", config))
    assert proc.returncode == 2
    assert "generation.max_batch_tokens: prompt 'mixed-0001'" in proc.stderr
    assert not results.exists()


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
