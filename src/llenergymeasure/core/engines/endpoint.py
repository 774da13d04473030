"""`load.endpoint`: the load sent to an OpenAI-compatible server on this host, measured here.

The server (vLLM's `vllm serve`, `transformers serve`, ...) runs in its own processes;
llem measures the energy of the GPUs it names (`load.endpoint_gpus`) and of this host
over the window, and times each request on its own monotonic clock from the streamed
response: the arrival when the request is sent, a token time for each chunk that
carries text, the last at the final chunk. Tokens come from the server's `usage`
(prompt and completion tokens, asked for with `stream_options.include_usage`); where a
server sends none, the text chunks are counted and the result says so.

Nothing of the model is known here: dtype and FLOPs are null.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
import psutil

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.base import EngineOutput, LoadedModel, RequestsDoneFn, Workload
from llenergymeasure.core.load.drive import run_load, served_requests
from llenergymeasure.core.load.runner import Completion
from llenergymeasure.domain.load import RequestRecord as LoadRequestRecord
from llenergymeasure.domain.metrics import LatencySamples, MeasurementWarning
from llenergymeasure.errors import LlemError
from llenergymeasure.log import logger
from llenergymeasure.prompts import Prompt

CONNECT_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 600.0


def listed_models(body: bytes) -> list[str]:
    """The model ids of an OpenAI `/models` answer; empty where it is not one."""
    try:
        data = orjson.loads(body).get("data", [])
        return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return []


def server_pids(url: str) -> list[int] | None:
    """The processes of the server listening on `url`'s port here, with their children.

    None where no listener's owner can be seen (a process of another user, or of another
    PID namespace: the kernel hides its sockets' owner).
    """
    port = urlsplit(url).port  # the config requires one
    listeners = {
        c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid
    }
    pids: set[int] = set()
    for pid in listeners:
        with contextlib.suppress(psutil.Error):
            children = psutil.Process(pid).children(recursive=True)
            pids |= {pid, *(child.pid for child in children)}
    return sorted(pids) or None


def endpoint_latencies_ms(record: LoadRequestRecord) -> LatencySamples:
    """TTFT and end-to-end from the arrival; ITL only where each token has its time."""
    if record.first_token_s is None or record.last_token_s is None:
        return LatencySamples()
    return LatencySamples(
        ttft_ms=[record.ttft_ms],
        e2e_ms=[record.e2e_ms],
        itl_ms=record.itl_ms,
        batch_return_ms=[record.e2e_ms],
    )


class EndpointEngine:
    """Requests to a running server; its GPUs and this host are what is measured."""

    name = "endpoint"

    def __init__(self, config: ExperimentConfig, device: str) -> None:
        self.config = config
        self.url = str(config.load.endpoint).rstrip("/")
        self.cuda_ordinals = list(config.load.endpoint_gpus)
        self.device = f"cuda:{self.cuda_ordinals[0]}" if self.cuda_ordinals else "cpu"
        self.chunk_counted = 0
        self.server: list[int] | None = None

    def load(self) -> LoadedModel:
        """Check the server answers and, where it lists its models, serves `model.name`.

        Raises:
            LlemError: the server does not answer, or lists models without this one.

        """
        import httpx

        try:
            reply = httpx.get(f"{self.url}/models", timeout=CONNECT_TIMEOUT_S)
        except httpx.HTTPError as e:
            raise LlemError(f"load.endpoint {self.url}: no answer from the server ({e})") from e
        served = []
        if reply.status_code == 200:
            served = listed_models(reply.content)
        else:
            logger.info(f"{self.url}/models answered {reply.status_code}: model not checked")
        if served and self.config.model.name not in served:
            raise LlemError(
                f"model.name {self.config.model.name!r}: the server at {self.url} serves "
                + ", ".join(map(repr, served))
            )
        self.server = server_pids(self.url)
        if self.server is None:
            logger.warning(f"{self.url}: the server's processes cannot be seen from here")
        return LoadedModel(source=self.url, dtype="unknown", geometry=None, context_tokens=None)

    def prepare(self, prompts: list[Prompt], max_prompt_tokens: int | None) -> Workload:
        """The prompts' texts (the server tokenises them)."""
        return Workload(
            prompts, [p.text for p in prompts], expected_requests=self.config.load.num_requests
        )

    def warmup_step(self, workload: Workload, max_new_tokens: int) -> Callable[[], float] | None:
        """One request with the warmup's token budget, timed to its last chunk."""
        if not workload.items:
            return None

        def run_once() -> float:
            import asyncio

            start = time.perf_counter()
            asyncio.run(self._one(workload.items[0], max_new_tokens))
            return (time.perf_counter() - start) * 1000.0

        return run_once

    def run(self, workload: Workload, requests_done: RequestsDoneFn) -> EngineOutput:
        """The load's arrivals, each request streamed from the server."""
        import asyncio

        done = itertools.count(1)
        tokens = [0]

        async def submit(request_id: int, text: str) -> Completion:
            completion = await self._one(text, self.config.generation.max_new_tokens)
            tokens[0] += completion.output_tokens
            requests_done(next(done), tokens[0])
            return completion

        run = asyncio.run(run_load(self.config.load, self.config.seed, workload.items, submit))
        served = [r for r in run.requests if r.error is None]
        requests = served_requests(served, workload.prompts)
        samples = [endpoint_latencies_ms(r) for r in served]
        return EngineOutput(
            requests=requests,
            latency=LatencySamples.concat(samples),
            load_run=run,
            warnings=self._warnings(),
        )

    def synchronize(self) -> None:
        """Nothing to wait for here: a request is done when its last chunk arrived."""

    def helper_pids(self) -> list[int]:
        """The server's processes: their CPU time and their GPU work are the run's."""
        return list(self.server or [])

    def close(self) -> None:
        """The server is the user's: it is left running."""

    async def _one(self, text: str, max_new_tokens: int) -> Completion:
        """Stream one completion; its token times on the monotonic clock."""
        import httpx

        chat = self.config.prompts.chat_template
        body = {
            "model": self.config.model.name,
            **({"messages": [{"role": "user", "content": text}]} if chat else {"prompt": text}),
            "max_tokens": max_new_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
            **self._sampling(),
        }
        times: list[float] = []
        usage: dict[str, Any] | None = None
        finish = None
        async with (
            httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S) as client,
            client.stream(
                "POST", f"{self.url}/{'chat/completions' if chat else 'completions'}", json=body
            ) as reply,
        ):
            if reply.status_code != 200:
                detail = (await reply.aread()).decode(errors="replace")[:200]
                raise LlemError(f"the server answered {reply.status_code}: {detail}")
            async for line in reply.aiter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                chunk = orjson.loads(line.removeprefix("data:").strip())
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    if choice.get("text") or (choice.get("delta") or {}).get("content"):
                        times.append(time.monotonic())
                    finish = choice.get("finish_reason") or finish
        if usage is None:
            self.chunk_counted += 1
        output_tokens = int(usage["completion_tokens"]) if usage else len(times)
        # A chunk can carry several tokens (and the last often none): chunk times are token
        # times only where they are as many as the tokens.
        token_times = times if len(times) == output_tokens else []
        return Completion(
            output_tokens=output_tokens,
            first_token_s=times[0] if times else None,
            last_token_s=times[-1] if times else None,
            input_tokens=int(usage["prompt_tokens"]) if usage else None,
            token_times_s=token_times,
            stopped_by_eos=finish == "stop" if finish is not None else None,
        )

    def _sampling(self) -> dict[str, Any]:
        generation = self.config.generation
        if not generation.do_sample:
            return {"temperature": 0.0, "seed": self.config.seed}
        return {
            "temperature": generation.temperature,
            "top_p": generation.top_p,
            "seed": self.config.seed,
        }

    def _warnings(self) -> list[MeasurementWarning]:
        warnings = []
        if self.chunk_counted:
            warnings.append(
                MeasurementWarning(
                    code="endpoint_tokens_from_chunks",
                    message=f"{self.chunk_counted} response(s) had no usage: their output "
                    "tokens are the streamed chunks that carried text, and their input "
                    "tokens are unknown",
                    remediation="use a server that sends usage with stream_options.include_usage",
                )
            )
        if self.server is None:
            warnings.append(
                MeasurementWarning(
                    code="endpoint_server_unseen",
                    message=f"the processes of the server at {self.url} cannot be seen from "
                    "here (another user's, or another PID namespace's): its CPU time counts "
                    "as other work on the host, and on its GPUs as another process's",
                    remediation="run llem as the server's user, in the same PID namespace",
                )
            )
        return warnings
