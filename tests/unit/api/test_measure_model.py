"""llem.measure around the real tiny model, as a context manager and a decorator."""

from __future__ import annotations

import subprocess
import sys

import pytest

import llenergymeasure as llem


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llenergymeasure.models import resolve_model

    path = resolve_model("builtin:tiny-llama").path
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    return model, tokenizer(["The energy of inference"], return_tensors="pt")


def generate(model, inputs, tokens: int = 8):
    return model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)


def test_with_measure_returns_energy_method_and_warnings(tiny) -> None:
    model, inputs = tiny
    with llem.measure(sample_interval_ms=10) as measured:
        out = generate(model, inputs)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 8
    assert measured.done and measured.duration_s > 0
    assert 0 < measured.measurement_cpu_s < measured.duration_s  # the sampler thread's own
    assert measured.boundary == "cpu_dram"  # torch has no CUDA here
    assert measured.energy_j is not None and measured.energy_j > 0
    assert measured.methods["cpu"] in ("rapl", "estimate")
    assert [c.component for c in measured.components] == list(measured.methods)
    assert measured.samples and all(s.device_index == -1 for s in measured.samples)
    codes = [w.code for w in measured.warnings]
    assert "short_measurement" in codes  # the checks `llem run` makes, on this window
    assert ("energy_estimated" in codes) == (measured.methods["cpu"] == "estimate")


def test_a_decorated_functions_latest_measurement_is_reachable(tiny) -> None:
    model, inputs = tiny

    @llem.measure()
    def run(tokens: int):
        return generate(model, inputs, tokens)

    assert run.last_measurement is None
    out = run(4)
    first = run.last_measurement
    assert out.shape[1] == inputs["input_ids"].shape[1] + 4  # the return value is kept
    assert first.done and first.energy_j > 0
    run(4)
    assert run.last_measurement is not first and run.last_measurement.done


def test_an_exception_in_the_body_still_closes_the_window() -> None:
    with pytest.raises(RuntimeError, match="boom"), llem.measure() as measured:
        raise RuntimeError("boom")
    assert measured.done and measured.duration_s is not None


def test_a_baseline_in_seconds_gives_energy_above_idle() -> None:
    with llem.measure(baseline=0.5) as measured:
        sum(i * i for i in range(200_000))
    (cpu,) = [c for c in measured.components if c.component == "cpu"]
    assert cpu.baseline_method in ("fresh", "cached")
    assert cpu.baseline_duration_s == 0.5
    assert measured.above_idle_j is not None


def test_the_api_imports_neither_torch_nor_the_launcher_until_it_runs() -> None:
    code = (
        "import sys, llenergymeasure as llem\n"
        "heavy = ('torch', 'transformers', 'llenergymeasure.api',\n"
        "         'llenergymeasure.orchestration.launcher', 'prometheus_client')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "llem.measure, llem.EnergyMonitor, llem.RankResults, llem.run_experiment\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split("\n")[:2] == ["[]", "['llenergymeasure.api']"]
