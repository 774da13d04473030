"""Figures drawn from a comparison: valid PNGs, and one-line refusals."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import pytest

from llenergymeasure.errors import ResultsError
from llenergymeasure.results.compare import Comparison, ComparisonRow, Interval
from llenergymeasure.results.plots import campaign_figure, plot_campaign

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def row(number: int, batch_size: int, dtype: str, mean: float) -> ComparisonRow:
    intervals = {
        "energy_per_output_token_j": Interval(mean, mean * 0.9, mean * 1.1, 3),
        "total_tokens_per_second": Interval(100 / mean, None, None, 1),
    }
    return ComparisonRow(
        label=f"sweep-c{number}",
        config_hash=str(number),
        parameters={"generation.batch_size": batch_size, "model.dtype": dtype},
        experiment_ids=[f"e{number}-{k}" for k in range(3)],
        energy_methods=["nvml_counter"],
        intervals=intervals,
        ratio_to_best=None,
    )


COMPARISON = Comparison(
    rows=[
        row(n, b, d, m)
        for n, (b, d, m) in enumerate(
            [
                (1, "float32", 2.0),
                (4, "float32", 0.9),
                (16, "float32", 0.5),
                (1, "bfloat16", 1.2),
                (4, "bfloat16", 0.5),
                (16, "bfloat16", 0.3),
            ],
            start=1,
        )
    ],  # fmt: skip
    parameter_names=["generation.batch_size", "model.dtype"],
    energy_methods=["nvml_counter"],
    model_names=["builtin:smollm2-135m"],
    devices=["NVIDIA H100 80GB HBM3"],
    notes=[],
)


@pytest.mark.parametrize(
    ("metric", "x"),
    [
        ("energy_per_output_token_j", "generation.batch_size"),
        ("total_tokens_per_second", "model.dtype"),
    ],
)
def test_campaign_figure_is_a_png_of_paper_size(tmp_path: Path, metric: str, x: str) -> None:
    path = plot_campaign(COMPARISON, metric, x, tmp_path / "plots" / "figure.png")
    width, height = png_size(path)
    assert (width, height) == (1280, 800)
    assert 20_000 < path.stat().st_size < 400_000
    assert not list(path.parent.glob(".*.tmp"))


def test_campaign_figure_refuses_unknown_metric_or_axis(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="--metric joules: not one of energy_per_output_token_j"):
        plot_campaign(COMPARISON, "joules", "model.dtype", tmp_path / "a.png")
    with pytest.raises(ResultsError, match=r"--x seed: not a parameter that varies here"):
        plot_campaign(COMPARISON, "energy_per_output_token_j", "seed", tmp_path / "a.png")
    assert not list(tmp_path.iterdir())


def test_a_dollar_in_a_name_is_drawn_as_text(tmp_path: Path) -> None:
    named = replace(COMPARISON, model_names=[r"/models/$\notacommand$"])
    path = plot_campaign(named, "energy_per_output_token_j", "model.dtype", tmp_path / "a.png")
    assert png_size(path) == (1280, 800)


def test_a_null_parameter_is_written_as_the_config_writes_it() -> None:
    """An unquantized configuration is `bits=null` in the legend and on the axis, not None."""
    rows = [
        replace(r, parameters={"model.quantization.bits": bits, "model.dtype": r_dtype})
        for r, (bits, r_dtype) in zip(
            COMPARISON.rows[:4],
            [(None, "float32"), (4, "float32"), (None, "bfloat16"), (4, "bfloat16")],
            strict=True,
        )
    ]
    names = ["model.quantization.bits", "model.dtype"]
    swept = replace(COMPARISON, rows=rows, parameter_names=names)
    by_dtype = campaign_figure(swept, "energy_per_output_token_j", "model.dtype")
    (ax,) = by_dtype.axes
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["bits=4", "bits=null"]
    by_bits = campaign_figure(swept, "energy_per_output_token_j", "model.quantization.bits")
    (ax,) = by_bits.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["null", "4"]
