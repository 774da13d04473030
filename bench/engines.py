"""The three engines side by side, and the overhead of llem's measurement on vLLM.

Part 1: one `llem.run_experiment` per engine (`transformers`, `transformers-cb`, `vllm`)
on the same prompts (the first --prompts of builtin:mixed under 300 characters: no
summaries or long contexts, so a run takes seconds on a CPU), the same `max_new_tokens`, greedy, at
the same dtype (float32 unless --dtype says otherwise; each row prints the dtype its
engine ran), at most --concurrency requests at once (`generation.batch_size`,
`transformers_cb.max_requests_per_batch`, `vllm.max_num_seqs`). Each row: tokens/s over
the process's busy window, J per output token (the headline boundary), and how the
energy was measured.

Part 2: vLLM's bare `LLM.generate` over the same prompts against the vLLM engine's `run`
(llem's step loop, every token timed) inside the public `llem.measure` window at 100 ms
sampling, in ABBA quads (`abba.py`, as `overhead.py`), with a bare-vs-bare control arm
for the noise floor of the machine. CPU share = the sampling process's CPU time over
the CPU time of the inference (this process and vLLM's engine processes).

Runs in the environment that has vLLM (both transformers engines run there too):

    .venv-vllm/bin/python bench/engines.py [--prompts 16] [--max-new-tokens 32] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import psutil
from abba import Arm, interval, run_abba

import llenergymeasure as llem
from llenergymeasure.config.loader import validate_config
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.vllm import VllmEngine
from llenergymeasure.prompts import load_prompts, read_prompt_source

TARGET = 0.99
ENGINES = ("transformers", "transformers-cb", "vllm")
# vLLM on the CPU: a fixed KV cache (its default reserves 90 % of the NUMA node's memory)
# a context that holds the longest prompt of the set with its new tokens, and eager mode
# (compiling the model's graph takes minutes on a 2-core machine).
VLLM_CPU = {"kv_cache_memory_mb": 256, "max_model_len": 1024, "enforce_eager": True}
SHORT_PROMPT_CHARS = 300


def write_prompts(count: int, path: Path) -> Path:
    """The first `count` prompts of builtin:mixed under SHORT_PROMPT_CHARS, as JSONL."""
    short = [p for p in read_prompt_source("builtin:mixed") if len(p.text) < SHORT_PROMPT_CHARS]
    lines = [orjson.dumps({"id": p.id, "task": p.task, "prompt": p.text}) for p in short[:count]]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def engine_config(args: argparse.Namespace, engine: str) -> ExperimentConfig:
    """The experiment of one engine; everything but the engine's own batch bound is shared."""
    concurrency = {
        "transformers": {"generation": {"batch_size": args.concurrency}},
        "transformers-cb": {"transformers_cb": {"max_requests_per_batch": args.concurrency}},
        "vllm": {"vllm": {**VLLM_CPU, "max_num_seqs": args.concurrency}},
    }[engine]
    generation = {"max_new_tokens": args.max_new_tokens, "do_sample": False}
    return validate_config(
        {
            "name": f"bench-engines-{engine}",
            "engine": engine,
            "model": {"name": args.model, "dtype": args.dtype},
            "prompts": {"source": str(args.prompts_file), "num_prompts": None},
            "generation": {**generation, **concurrency.pop("generation", {})},
            "measurement": {
                "warmup": {"min_prompts": 2, "max_prompts": 6, "window_size": 2},
                "baseline": {"duration_s": 2.0},
            },
            "results_dir": str(args.results_dir),
            **concurrency,
        }
    )


def run_engines(args: argparse.Namespace) -> list[dict[str, Any]]:
    """One experiment per engine through the public API; a row of figures each."""
    rows = []
    for engine in ENGINES:
        outcome = llem.run_experiment(engine_config(args, engine))
        process = orjson.loads((outcome.experiment_dir / "process_0.json").read_bytes())
        result = outcome.aggregated
        rows.append(
            {
                "engine": engine,
                "dtype": process["dtype"],
                "experiment_id": outcome.experiment_id,
                "requests": result.num_requests,
                "input_tokens": result.input_tokens,
                "output_tokens": result.output_tokens,
                "tokens_per_s": result.avg_tokens_per_second,
                "j_per_token": result.energy_per_output_token_j,
                "energy_method": str(result.energy_method),
                "boundary": result.energy_breakdown.boundary if result.energy_breakdown else None,
            }
        )
    return rows


class VllmWorkload:
    """One vLLM engine and the prompts of part 1, run bare or measured."""

    def __init__(self, config: ExperimentConfig) -> None:
        from vllm import SamplingParams

        self.engine = VllmEngine(config, "cpu")
        self.engine.load()
        self.workload = self.engine.prepare(load_prompts(config.prompts), None)
        self.requests = [{"prompt_token_ids": ids} for ids in self.workload.items]
        # What a user of vLLM writes: greedy, the same limit, whole outputs at the end.
        self.params = SamplingParams(max_tokens=config.generation.max_new_tokens, temperature=0)
        self.window = llem.measure(devices=[], sample_interval_ms=100)

    def bare(self) -> tuple[float, float, int, None]:
        """Wall seconds (twice: no window to open) and tokens of one `LLM.generate`."""
        start = time.perf_counter()
        outputs = self.engine.llm.generate(self.requests, self.params, use_tqdm=False)
        wall_s = time.perf_counter() - start
        return wall_s, wall_s, sum(len(o.outputs[0].token_ids) for o in outputs), None

    def measured(self) -> tuple[float, float, int, float]:
        """Window seconds, whole-call seconds, tokens and the measurement's CPU share."""
        cpu_start = self.inference_cpu_s()
        start = time.perf_counter()
        with self.window as window:
            output = self.engine.run(self.workload, lambda done, tokens=None: None)
        wall_s = time.perf_counter() - start
        inference_cpu_s = self.inference_cpu_s() - cpu_start
        tokens = sum(r.output_tokens for r in output.requests)
        return window.busy_s, wall_s, tokens, window.measurement_cpu_s / inference_cpu_s

    def inference_cpu_s(self) -> float:
        """CPU seconds so far of this process and of vLLM's engine processes."""
        total_s = time.process_time()
        for pid in self.engine.helper_pids():
            times = psutil.Process(pid).cpu_times()
            total_s += times.user + times.system
        return total_s


def run_overhead(args: argparse.Namespace) -> tuple[dict[str, Arm], int, float]:
    """Measured against bare vLLM, and bare against bare, in ABBA quads."""
    work = VllmWorkload(engine_config(args, "vllm"))
    try:
        arms = {name: Arm(name) for name in ("llem@100ms", "control")}
        runners = {"llem@100ms": work.measured, "control": work.bare}
        rounds, bare_tps = run_abba(
            arms, runners, work.bare, args.max_minutes, max_rounds=args.rounds
        )
    finally:
        work.engine.close()
    return arms, rounds, bare_tps


def print_engines(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print(
        f"{args.model}, {args.prompts} short prompts of builtin:mixed, {args.max_new_tokens} new "
        f"tokens, greedy, at most {args.concurrency} requests at once, one process"
    )
    print(
        f"{'engine':<16} {'dtype':<9} {'in tok':>7} {'out tok':>8} {'tok/s':>8} "
        f"{'J/token':>9}  energy"
    )
    for r in rows:
        per_token = f"{r['j_per_token']:>9.4f}" if r["j_per_token"] is not None else f"{'-':>9}"
        print(
            f"{r['engine']:<16} {r['dtype']:<9} {r['input_tokens']:>7} {r['output_tokens']:>8} "
            f"{r['tokens_per_s']:>8.2f} {per_token}  {r['energy_method']} ({r['boundary']})"
        )


def print_overhead(arms: dict[str, Arm], rounds: int, bare_tps: float) -> None:
    print(f"vLLM overhead: {rounds} ABBA quads per arm, bare LLM.generate {bare_tps:.2f} tok/s")
    print(
        f"{'arm':<11} {'tok/s':>8} {'window ratio':>13} {'95 % interval':>19} "
        f"{'call ratio':>11} {'95 % interval':>19} {'edges ms':>9} {'cpu share':>10}"
    )
    for name, arm in arms.items():
        median, low, high = arm.interval()
        call_median, call_low, call_high = interval(arm.call_ratios)
        share = f"{100 * statistics.median(arm.cpu_shares):>9.3f}%" if arm.cpu_shares else "-"
        print(
            f"{name:<11} {statistics.median(arm.tokens_per_s):>8.2f} {median:>13.4f} "
            f"[{low:.4f}, {high:.4f}] {call_median:>11.4f} [{call_low:.4f}, {call_high:.4f}] "
            f"{statistics.median(arm.edges_ms):>9.1f} {share:>10}"
        )
    median, low, _ = arms["llem@100ms"].interval()
    met = "met" if low >= TARGET else "NOT met at the lower end"
    control, control_low, control_high = arms["control"].interval()
    print(
        f"headline: vLLM measured/bare at 100 ms {median:.4f} (95 % low {low:.4f}), target "
        f">= {TARGET} {met}; control (bare/bare) {control:.4f} "
        f"[{control_low:.4f}, {control_high:.4f}]"
    )


def record(args: argparse.Namespace, rows: list[dict[str, Any]], arms: dict[str, Arm]) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "date": datetime.now(timezone.utc).isoformat(),
        "machine": f"{platform.node()} {platform.machine()} x{os.cpu_count()}",
        "load_average": os.getloadavg(),
        "engines": rows,
        "vllm_overhead": {
            name: {"ratios": a.ratios, "call_ratios": a.call_ratios, "ci95": a.interval()}
            for name, a in arms.items()
        },
    }
    args.out.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:smollm2-135m")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=4, help="ABBA quads per arm at most")
    parser.add_argument("--max-minutes", type=float, default=6.0, help="for the ABBA rounds")
    parser.add_argument("--results-dir", type=Path, default=Path("results/bench/engines"))
    parser.add_argument("--out", type=Path, default=Path("results/bench/engines.json"))
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    args.prompts_file = write_prompts(args.prompts, args.results_dir / "prompts.jsonl")
    started = datetime.now(timezone.utc)
    rows = run_engines(args)
    arms, rounds, bare_tps = run_overhead(args)
    print(f"{started:%Y-%m-%d %H:%M} UTC, {platform.machine()} x{os.cpu_count()}, no GPU")
    print_engines(args, rows)
    print_overhead(arms, rounds, bare_tps)
    print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
    record(args, rows, arms)


if __name__ == "__main__":
    main()
