"""Test helpers: small real configs and a way to call the real `llem` command.

A module with a unique name (not `conftest`), so that importing it never depends on
which conftest pytest loaded first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]


def tiny_config_dict(results_dir: Path, **sections: Any) -> dict[str, Any]:
    """A seconds-long experiment on builtin:tiny-llama writing under `results_dir`."""
    config: dict[str, Any] = {
        "name": "tiny",
        "model": {"name": "builtin:tiny-llama"},
        "prompts": {"source": "builtin:mixed", "num_prompts": 12},
        "generation": {"max_new_tokens": 8, "batch_size": 4},
        "measurement": {
            "warmup": {"min_prompts": 2, "max_prompts": 4, "window_size": 2},
            "baseline": {"duration_s": 0.25, "cache_ttl_s": 0},
        },
        "results_dir": str(results_dir),
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


# Scaling builtin:tiny-llama's EOS row by this makes greedy decoding stop after 2 to 7
# tokens on some prompts and run to the limit on others.
EOS_ROW_SCALE = 3.0


def build_eos_llama(dest: Path) -> Path:
    """builtin:tiny-llama with its EOS logit scaled, saved as a local model directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llenergymeasure.models import resolve_model

    source = resolve_model("builtin:tiny-llama").path
    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    with torch.no_grad():
        model.lm_head.weight[tokenizer.eos_token_id] *= EOS_ROW_SCALE
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, then restore the count.

    The tiny models gain nothing from threads, and on a machine shared with other jobs
    torch's spinning worker threads slow them about tenfold.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def scrape_metrics(port: int) -> dict[str, list[Any]] | None:
    """The metric families at 127.0.0.1:port/metrics (`--metrics-port`), by name, as
    `prometheus_client`'s parser reads them; None where nothing answers.
    """
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return None
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_llem(
    *args: str, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """The real CLI in a child process, as a user would call it."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "llenergymeasure", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_llem_here(*args: str | Path) -> tuple[int, str, str]:
    """The real CLI entry point (`llenergymeasure.cli.main`) in this process.

    Returns:
        Its exit code, stdout and stderr.

    """
    from contextlib import redirect_stderr, redirect_stdout
    from io import StringIO

    from llenergymeasure.cli import main

    stdout, stderr = StringIO(), StringIO()
    argv, sys.argv = sys.argv, ["llem", *map(str, args)]
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, stdout.getvalue(), stderr.getvalue()


@dataclass(frozen=True)
class MultiProcessRun:
    """A finished `llem run --processes 2` and where it left its files."""

    config_path: Path
    results_dir: Path
    experiment_dir: Path
    proc: subprocess.CompletedProcess
    wall_s: float


class LineReader:
    """Collects a stream's lines in a background thread."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, needle: str, timeout_s: float) -> None:
        """Block until a line holds `needle`."""
        deadline = time.monotonic() + timeout_s
        while not any(needle in line for line in self.lines):
            assert time.monotonic() < deadline, f"{needle!r} never appeared:\n{''.join(self.lines)}"
            time.sleep(0.05)

    def finish(self) -> str:
        """Everything read, once the stream has closed."""
        self._thread.join(timeout=60)
        return "".join(self.lines)


def process_gone(pid: int, within_s: float) -> bool:
    """Whether process `pid` has exited (or is a zombie) within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def live_children() -> set[int]:
    """The pids of this process's children that are running (zombies left out)."""
    alive = set()
    for child in psutil.Process().children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            continue
    return alive
