"""A campaign sweeping the request rate on `transformers-cb`: compare and trade-off plot.

Two rates x two cycles of a Poisson load on the tiny Llama, run by the real `llem
campaign`; `llem results compare` shows goodput beside J/token, and `llem plot campaign
--against ttft_p95_ms` draws the J/token-latency curve.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from llem_testing import run_llem, tiny_config_dict, write_yaml

RATES = [4.0, 16.0]


@pytest.fixture(scope="module")
def load_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("load-campaign")
    base = tiny_config_dict(
        root / "results",
        engine="transformers-cb",
        prompts={"num_prompts": 4},
        generation={"max_new_tokens": 4, "batch_size": 1},
        transformers_cb={"max_requests_per_batch": 4},
        load={
            "mode": "rate",
            "rate_per_s": RATES[0],
            "num_requests": 8,
            "slo": {"ttft_ms": 60_000, "tpot_ms": 60_000},
        },
        measurement={
            "warmup": {"min_prompts": 1, "max_prompts": 2, "window_size": 2},
            "baseline": {"duration_s": 0.1, "cache_ttl_s": 0},
            "energy": {"backend": "estimate"},
        },
    )
    campaign = {
        "campaign_name": "rates",
        "base": base,
        "sweep": {"load.rate_per_s": RATES},
        "cycles": 2,
        "order": "interleaved",
    }
    path = write_yaml(root / "campaign.yaml", campaign)
    proc = run_llem("campaign", path, cwd=root, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


def test_compare_shows_goodput_for_a_load_campaign(load_campaign: Path) -> None:
    proc = run_llem(
        "results", "compare", "--campaign", "rates", "--results-dir", load_campaign / "results"
    )
    assert proc.returncode == 0, proc.stderr
    assert "goodput" in proc.stdout
    assert "rate_per" in proc.stdout  # the swept parameter's column (folded at 120 columns)


def test_the_trade_off_plot_draws_j_per_token_against_p95_ttft(load_campaign: Path) -> None:
    out = load_campaign / "tradeoff.png"
    proc = run_llem(
        "plot",
        "campaign",
        "rates",
        "--against",
        "ttft_p95_ms",
        "--results-dir",
        load_campaign / "results",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_results_show_gives_the_energy_split_by_phase(load_campaign: Path) -> None:
    results = load_campaign / "results"
    aggregated = sorted((results / "aggregated").glob("*.json"))
    result = orjson.loads(aggregated[0].read_bytes())
    split = result["load"]["attributed"]
    proc = run_llem("results", "show", aggregated[0].stem, "--results-dir", results)
    assert proc.returncode == 0, proc.stderr
    line = next(x for x in proc.stdout.splitlines() if "prefill / decode (attributed)" in x)
    assert f"{split['prefill_j']:,.2f} J / {split['decode_j']:,.2f} J" in line
