"""`engine: transformers-cb` against `engine: transformers` on the same prompts.

Both run the EOS-stopping tiny Llama (`llem_testing.build_eos_llama`: some requests stop
after 2 to 7 tokens, others run to the limit) greedily in float32 through the one
lifecycle, so tokens, latencies and FLOPs are counted by the same code; only the
scheduling differs (static left-padded batches of 4 against continuous batching with at
most 4 requests a step).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.engines import create_engine
from llenergymeasure.core.lifecycle import RunContext, run_measured
from llenergymeasure.domain.experiment import RawProcessResult
from llenergymeasure.prompts import load_prompts

from llem_testing import build_eos_llama, one_torch_thread, run_llem, tiny_config_dict, write_yaml

MAX_NEW = 8
REQUESTS = 4


@dataclass(frozen=True)
class EngineRuns:
    static: RawProcessResult
    continuous: RawProcessResult


def engine_config(root: Path, model_dir: Path, engine: str) -> dict:
    sections = (
        {"transformers_cb": {"max_requests_per_batch": REQUESTS}}
        if engine != "transformers"
        else {}
    )
    return tiny_config_dict(
        root / "results",
        model={"name": str(model_dir), "dtype": "float32"},
        engine=engine,
        generation={
            "max_new_tokens": MAX_NEW,
            "batch_size": REQUESTS if engine == "transformers" else 1,
        },
        measurement={"baseline": {"enabled": False}, "energy": {"backend": "estimate"}},
        **sections,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> EngineRuns:
    root = tmp_path_factory.mktemp("engines")
    model_dir = build_eos_llama(root / "eos-llama")
    results = {}
    with one_torch_thread():
        for engine in ("transformers", "transformers-cb"):
            config = validate_config(engine_config(root, model_dir, engine))
            run = run_measured(
                create_engine(config, "cpu"),
                config,
                RunContext(experiment_id=engine),
                load_prompts(config.prompts),
            )
            results[engine] = run.result
    return EngineRuns(results["transformers"], results["transformers-cb"])


def by_prompt(result: RawProcessResult) -> dict[str, tuple[int, int, bool]]:
    return {
        r.prompt_id: (r.input_tokens, r.output_tokens, r.stopped_by_eos) for r in result.requests
    }


def test_both_engines_count_the_same_tokens_for_each_prompt(runs: EngineRuns) -> None:
    static, continuous = by_prompt(runs.static), by_prompt(runs.continuous)
    assert static == continuous
    stopped = [eos for _, _, eos in static.values()]
    assert any(stopped) and not all(stopped), "the model must mix EOS stops and full runs"
    assert runs.continuous.engine == "transformers-cb" and runs.static.engine == "transformers"


def test_continuous_batching_latencies_run_from_submission_to_each_token(
    runs: EngineRuns,
) -> None:
    result = runs.continuous
    samples = result.latency_samples
    timed = [r for r in result.requests if r.output_tokens > 0]
    assert len(samples.ttft_ms) == len(samples.e2e_ms) == len(timed)
    assert len(samples.itl_ms) == sum(r.output_tokens - 1 for r in timed)
    for ttft, e2e, returned in zip(
        samples.ttft_ms, samples.e2e_ms, samples.batch_return_ms, strict=True
    ):
        assert 0 < ttft <= e2e <= returned
    assert max(samples.batch_return_ms) <= result.inference_duration_s * 1000.0
    # Every request arrives when the run starts: one of more than four queues behind the
    # first four, so the slowest first token comes after the fastest request finished.
    assert max(samples.ttft_ms) > min(samples.e2e_ms)


def test_continuous_batching_executes_no_padding(runs: EngineRuns) -> None:
    assert runs.continuous.flops.flops_executed == pytest.approx(runs.continuous.flops.flops_useful)
    assert runs.static.flops.flops_useful == pytest.approx(runs.continuous.flops.flops_useful)
    assert runs.static.flops.flops_executed > runs.static.flops.flops_useful


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"transformers_cb": {"page_size": 32}},
            "transformers_cb holds options of engine transformers-cb, but engine is transformers",
        ),
        (
            {"engine": "transformers-cb", "generation": {"batch_size": 4}},
            "generation.batch_size sets static batches",
        ),
        (
            {
                "engine": "transformers-cb",
                "generation": {"batch_size": 1},
                "transformers_cb": {"pages": 3},
            },
            "transformers_cb.pages",
        ),
    ],
)
def test_an_option_of_another_engine_is_refused_before_anything_runs(
    tmp_path: Path, patch: dict, message: str
) -> None:
    data = tiny_config_dict(tmp_path / "results", **patch)
    proc = run_llem("run", write_yaml(tmp_path / "wrong.yaml", data), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not (tmp_path / "results").exists(), "nothing may be created"
