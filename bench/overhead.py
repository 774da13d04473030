"""Measurement overhead: a bare `generate` loop against the full llem measurement.

Same model, prompts and batches, one process. Arms:
- bare: `model.generate` over the batches, nothing else;
- llem@100ms / llem@10ms: the same batches through the engine's `generate_batch` (the
  per-step latency hook) inside the public `llem.measure` window (sampling process at
  that interval, the energy backends), as a run measures;
- control: bare against bare, which shows the noise floor of this machine.

Each comparison runs in ABBA quads (bare, measured, measured, bare) so drifts cancel;
a quad gives throughput ratios measured/bare, two of them: over the window (the
window's own busy time, what a result's tokens/s is measured over: the distortion of
what is measured) and over the whole call (opening and closing the window included:
what a user of `llem.measure` pays). Quads are added round-robin until the 95 %
bootstrap interval of each median ratio is within +-1 % for every arm, or the time
budget ends (then the table says the interval is wider). The CPU time of the sampling
process and the backends' threads over the CPU time of the inference is the low-noise
figure.

    .venv/bin/python bench/overhead.py [--max-minutes 8] [--model builtin:smollm2-135m]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import orjson
import torch
from abba import TARGET_HALF_WIDTH, Arm, interval, run_abba
from transformers import AutoModelForCausalLM, AutoTokenizer

import llenergymeasure as llem
from llenergymeasure.config.loader import validate_config
from llenergymeasure.core.device import resolve_dtype
from llenergymeasure.core.engines.generation import (
    build_generation_config,
    encode_batches,
    generate_batch,
)
from llenergymeasure.models import resolve_model
from llenergymeasure.prompts import read_prompt_source

TARGETS = {"llem@100ms": 0.995, "llem@10ms": 0.99}


class Workload:
    """One model and one set of batches, run bare or inside `llem.measure`."""

    def __init__(self, model: str, batch_size: int, prompts: int, max_new_tokens: int) -> None:
        config = validate_config(
            {
                "name": "bench-overhead",
                "model": {"name": model},
                "generation": {"max_new_tokens": max_new_tokens, "batch_size": batch_size},
            }
        )
        self.device = "cuda:0" if torch.cuda.is_available() else "cpu"
        path = resolve_model(model).path
        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = resolve_dtype(config.model.dtype, self.device)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.device).eval()
        # Short questions keep one run around a second, so many quads fit in the budget.
        chosen = [p for p in read_prompt_source("builtin:mixed") if p.task == "qa"][:prompts]
        self.batches = encode_batches(
            chosen,
            self.tokenizer,
            batch_size=batch_size,
            use_chat_template=True,
            device=self.device,
        )
        self.gen_config = build_generation_config(config.generation, self.model, self.tokenizer)
        devices = [0] if self.device.startswith("cuda") else []
        self.at_100ms = llem.measure(devices=devices, sample_interval_ms=100)
        self.at_10ms = llem.measure(devices=devices, sample_interval_ms=10)

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize(self.device)

    def bare(self) -> tuple[float, float, int, None]:
        """Wall seconds (twice: no window to open) and tokens of a plain `generate` loop."""
        self.synchronize()
        start = time.perf_counter()
        tokens = 0
        with torch.inference_mode():
            for b in self.batches:
                out = self.model.generate(**b.inputs, generation_config=self.gen_config)
                tokens += out.shape[0] * (out.shape[1] - b.inputs["input_ids"].shape[1])
        self.synchronize()
        wall_s = time.perf_counter() - start
        return wall_s, wall_s, tokens, None

    def measured(self, measure: llem.measure) -> tuple[float, float, int, float]:
        """Window seconds, whole-call seconds, tokens and measurement CPU share.

        The body is what a run measures: each batch through the engine's `generate_batch`
        (per-step latency hook included), inside the public `llem.measure` window. The
        window's seconds are its busy time (energy start to the end of the body); the
        call's wall time and CPU time include opening and closing the window.
        """
        cpu_start = time.process_time()
        start = time.perf_counter()
        with torch.inference_mode(), measure as window:
            outputs = [
                generate_batch(self.model, b, self.gen_config, self.synchronize)
                for b in self.batches
            ]
        wall_s = time.perf_counter() - start
        # The sampling process's CPU time is not in this process's; the backends' threads
        # (a RAPL poll every 5 s) are, and are too small to matter.
        inference_cpu_s = time.process_time() - cpu_start
        tokens = sum(r.output_tokens for o in outputs for r in o.requests)
        return window.busy_s, wall_s, tokens, window.measurement_cpu_s / inference_cpu_s


def parse_workload_args(doc: str, max_minutes: float, out: str) -> argparse.Namespace:
    """The workload and budget options every overhead-style bench shares."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--max-minutes", type=float, default=max_minutes)
    parser.add_argument("--out", type=Path, default=Path(out))
    return parser.parse_args()


def main() -> None:
    args = parse_workload_args(__doc__, max_minutes=8.0, out="results/bench/overhead.json")
    work = Workload(args.model, args.batch_size, args.prompts, args.max_new_tokens)
    arms = {name: Arm(name) for name in ("llem@100ms", "llem@10ms", "control")}
    runners = {
        "llem@100ms": lambda: work.measured(work.at_100ms),
        "llem@10ms": lambda: work.measured(work.at_10ms),
        "control": work.bare,
    }
    rounds, bare_tps = run_abba(arms, runners, work.bare, args.max_minutes)
    report(args, arms, rounds, bare_tps)
    control = arms["control"].interval()
    lines = []
    for name, arm in arms.items():
        if name in TARGETS:
            median, low, _ = arm.interval()
            call_median, call_low, _ = interval(arm.call_ratios)
            met = verdict(median, low, TARGETS[name])
            lines.append(
                f"{name}: window {median:.4f} (95 % low {low:.4f}), whole call "
                f"{call_median:.4f} (low {call_low:.4f}), target >= {TARGETS[name]} {met}"
            )
    print("headline: measured/bare; " + "; ".join(lines))
    print(f"control (bare/bare): {control[0]:.4f} [{control[1]:.4f}, {control[2]:.4f}]")


def verdict(median: float, low: float, target: float) -> str:
    """Whether the target holds at the interval's lower end, at its median, or not at all."""
    if low >= target:
        return "met at the lower end"
    if median >= target:
        return "met by the median, not at the lower end"
    return "NOT met"


def report(args: argparse.Namespace, arms: dict[str, Arm], rounds: int, bare_tps: float) -> None:
    print(
        f"model {args.model}, batch {args.batch_size}, {args.prompts} prompts, "
        f"{args.max_new_tokens} new tokens, {rounds} ABBA quads per arm"
    )
    print(
        f"{'arm':<11} {'tok/s':>8} {'window ratio':>13} {'95 % interval':>19} "
        f"{'call ratio':>11} {'95 % interval':>19} {'edges ms':>9} {'cpu share':>10}"
    )
    print(f"{'bare':<11} {bare_tps:>8.1f}")
    rows = {}
    for name, arm in arms.items():
        median, low, high = arm.interval()
        call_median, call_low, call_high = interval(arm.call_ratios)
        share = statistics.median(arm.cpu_shares) if arm.cpu_shares else None
        edges = statistics.median(arm.edges_ms)
        wide = "" if arm.half_width() <= TARGET_HALF_WIDTH else "  (wider than +-1 %)"
        share_text = f"{100 * share:>9.3f}%" if share is not None else f"{'-':>10}"
        print(
            f"{name:<11} {statistics.median(arm.tokens_per_s):>8.1f} {median:>13.4f} "
            f"[{low:.4f}, {high:.4f}] {call_median:>11.4f} [{call_low:.4f}, {call_high:.4f}] "
            f"{edges:>9.1f} {share_text}{wide}"
        )
        rows[name] = {
            "median_ratio": median,
            "ci95": [low, high],
            "ratios": arm.ratios,
            "call_median_ratio": call_median,
            "call_ci95": [call_low, call_high],
            "call_ratios": arm.call_ratios,
            "edges_ms_median": edges,
            "tokens_per_s": arm.tokens_per_s,
            "cpu_share_median": share,
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "date": datetime.now(timezone.utc).isoformat(),
        "machine": f"{platform.node()} {platform.machine()} x{os.cpu_count()}",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "model": args.model,
        "rounds": rounds,
        "bare_tokens_per_s": bare_tps,
        "arms": rows,
    }
    args.out.write_bytes(orjson.dumps(record, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
