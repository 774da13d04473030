"""`load.endpoint`: a real local OpenAI-compatible server measured under a Poisson load.

The test starts `transformers serve` (FastAPI + uvicorn, from transformers' serving
extra) on a free loopback port with the tiny Llama, runs `llem run` against it, reads
the result back, and stops the server.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from llenergymeasure.core.engines.endpoint import server_pids

from llem_testing import run_llem, tiny_config_dict, write_yaml

REQUESTS = 6
SERVER_START_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    from llenergymeasure.models import resolve_model

    model = str(resolve_model("builtin:tiny-llama").path)
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "serve.log"
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2):
                    break
            except urllib.error.HTTPError:  # it answers (transformers serve's list can fail)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not start:\n{log.read_text()[-2000:]}")
                time.sleep(1.0)
        yield url, model, proc.pid
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def endpoint_result(server: tuple[str, str, int], tmp_path_factory: pytest.TempPathFactory) -> dict:
    url, model, _ = server
    root = tmp_path_factory.mktemp("endpoint")
    config = tiny_config_dict(
        root / "results",
        model={"name": model},
        # The tiny Llama has no chat template: plain completions (/v1/completions).
        prompts={"chat_template": False},
        generation={"max_new_tokens": 4, "batch_size": 1},
        load={
            "mode": "rate",
            "rate_per_s": 4.0,
            "num_requests": REQUESTS,
            "endpoint": url,
            "slo": {"ttft_ms": 60_000, "tpot_ms": 60_000},
        },
        measurement={
            "warmup": {"min_prompts": 1, "max_prompts": 2, "window_size": 2},
            "baseline": {"duration_s": 0.1, "cache_ttl_s": 0},
            "energy": {"backend": "estimate"},
        },
    )
    proc = run_llem("run", write_yaml(root / "endpoint.yaml", config), cwd=root, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (path,) = (root / "results" / "raw").glob("*/process_0.json")
    return orjson.loads(path.read_bytes())


def test_the_endpoint_mode_measures_a_real_local_server(endpoint_result: dict) -> None:
    result = endpoint_result
    assert result["engine"] == "endpoint"
    assert result["num_requests"] == REQUESTS
    records = result["load_requests"]
    assert len(records) == REQUESTS and all(r["error"] is None for r in records)
    # Tokens are the server's own usage figures.
    assert result["output_tokens"] == sum(r["output_tokens"] for r in records) > 0
    assert all(r["input_tokens"] > 0 for r in records)
    for r in records:
        assert r["arrival_s"] < r["first_token_s"] <= r["last_token_s"]
    assert result["energy_breakdown"]["raw_j"] > 0
    assert result["flops"]["flops_useful"] is None  # nothing of the model is known here
    assert result["load"]["goodput"]["good_requests"] == REQUESTS
    assert "endpoint_server_unseen" not in {w["code"] for w in result["warnings"]}


def test_the_servers_processes_are_found_by_its_port(server: tuple[str, str, int]) -> None:
    """Its CPU time is the run's, and on its GPUs it is not another process."""
    url, _, pid = server
    found = server_pids(url)
    assert found is not None and pid in found
    assert server_pids(f"http://127.0.0.1:{free_port()}/v1") is None  # nothing listens


def test_a_server_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    config = tiny_config_dict(
        tmp_path / "results",
        generation={"batch_size": 1},
        load={
            "mode": "rate",
            "rate_per_s": 1.0,
            "num_requests": 2,
            "endpoint": f"http://127.0.0.1:{free_port()}/v1",
        },
        measurement={"baseline": {"enabled": False}, "energy": {"backend": "estimate"}},
    )
    proc = run_llem("run", write_yaml(tmp_path / "down.yaml", config), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "no answer from the server" in proc.stderr
    assert "Traceback" not in proc.stderr
