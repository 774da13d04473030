"""The vLLM engine: vLLM's offline `LLM`, stepped by hand so that each token is timed.

The only module that imports `vllm`. Prompts are chat-templated, tokenised and
left-truncated exactly as on the transformers engine (the model's own HF tokenizer) and
handed to vLLM as token ids; the counts recorded are vLLM's own: input tokens from
each request's `prompt_token_ids`, output tokens from its generated `token_ids` up to
and including the first EOS (`count_generated`, the transformers engine's rule).

All requests are queued at once and `LLMEngine.step()` is called until none is left
(what `LLM.generate` does inside); the time each step returns stamps the tokens it
delivered (`vllm_timing.py`). vLLM's own per-request timestamps are kept beside ours.
Under a `load:` mode the same engine is stepped while requests arrive (`vllm_load.py`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core import device as devices
from llenergymeasure.core.engines.base import EngineOutput, LoadedModel, RequestsDoneFn, Workload
from llenergymeasure.core.engines.generation import count_generated, prompt_texts
from llenergymeasure.core.engines.vllm_load import serve_load_output
from llenergymeasure.core.engines.vllm_timing import (
    RequestTrace,
    cross_check_warning,
    engine_latencies_ms,
    engine_request_stats,
    measured_latencies_ms,
)
from llenergymeasure.core.flops import BatchShape, ModelGeometry, model_geometry
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.log import logger
from llenergymeasure.models import resolve_model
from llenergymeasure.prompts import Prompt


def tensor_parallel_ordinals(process_index: int, tensor_parallel_size: int) -> list[int]:
    """The CUDA ordinals an engine of launcher process `process_index` owns.

    Data parallel (several launcher processes) times tensor parallel: process i owns
    the `tensor_parallel_size` devices from i x tensor_parallel_size on, so no device is
    in two processes.
    """
    first = process_index * tensor_parallel_size
    return list(range(first, first + tensor_parallel_size))


def visible_devices(ordinals: list[int], visible: str | None) -> str:
    """`CUDA_VISIBLE_DEVICES` for vLLM's workers: `ordinals` of the devices now visible."""
    names = [v.strip() for v in visible.split(",")] if visible else None
    return ",".join(names[i] if names is not None else str(i) for i in ordinals)


def engine_arguments(config: ExperimentConfig, model_path: str, dtype: str) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM` for this experiment."""
    options = config.vllm_options()
    arguments: dict[str, Any] = {
        "model": model_path,
        "tokenizer": model_path,
        "revision": config.model.revision,
        "trust_remote_code": config.model.trust_remote_code,
        "dtype": dtype,
        "seed": config.seed,
        "tensor_parallel_size": options.tensor_parallel_size,
        "max_num_seqs": options.max_num_seqs,
        "gpu_memory_utilization": options.gpu_memory_utilization,
        "enforce_eager": options.enforce_eager,
        "enable_prefix_caching": options.enable_prefix_caching,
        "quantization": options.quantization,
        # Keeps vLLM's per-request timestamps (RequestOutput.metrics) for the cross-check.
        "disable_log_stats": False,
    }
    optional = {
        "max_num_batched_tokens": options.max_num_batched_tokens,
        "max_model_len": options.max_model_len,
        "kv_cache_memory_bytes": (
            options.kv_cache_memory_mb * 2**20 if options.kv_cache_memory_mb else None
        ),
    }
    arguments.update({k: v for k, v in optional.items() if v is not None})
    return arguments


def meta_geometry(path: str, revision: str | None, trust_remote_code: bool) -> ModelGeometry | None:
    """The decoder's shape for FLOPs, read from the HF model built on the meta device.

    The weights live in vLLM's worker; an HF model of the same config without storage
    (no memory, no load) gives the parameter counts and the attention width.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    hf_config = AutoConfig.from_pretrained(
        path, revision=revision, trust_remote_code=trust_remote_code
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(hf_config, trust_remote_code=trust_remote_code)
    return model_geometry(model)


class VllmEngine:
    """One vLLM engine over the GPUs of one launcher process (or over the CPU)."""

    name = "vllm"

    def __init__(self, config: ExperimentConfig, device: str) -> None:
        self.config = config
        self.device = device
        self.options = config.vllm_options()
        local = devices.cuda_ordinals(device)
        self.cuda_ordinals = (
            tensor_parallel_ordinals(local[0], self.options.tensor_parallel_size) if local else []
        )
        self.dtype = str(devices.resolve_dtype(config.model.dtype, device)).removeprefix("torch.")
        self.llm: Any = None
        self.tokenizer: Any = None
        self.stop_ids: set[int] = set()
        self._next_id = 0
        self._helper_pids: list[int] = []

    def load(self) -> LoadedModel:
        """Resolve the model, start vLLM's engine on it and load the same HF tokenizer."""
        from transformers import AutoTokenizer
        from transformers import GenerationConfig as HfGenerationConfig
        from vllm import LLM

        cfg = self.config.model
        resolved = resolve_model(cfg.name, revision=cfg.revision)
        if self.cuda_ordinals:
            visible = visible_devices(self.cuda_ordinals, os.environ.get("CUDA_VISIBLE_DEVICES"))
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.llm = LLM(**engine_arguments(self.config, resolved.path, self.dtype))
        started = psutil.Process().children(recursive=True)
        self._helper_pids = [p.pid for p in started if p.pid not in before]
        self.tokenizer = AutoTokenizer.from_pretrained(
            resolved.path, revision=cfg.revision, trust_remote_code=cfg.trust_remote_code
        )
        self.tokenizer.truncation_side = "left"
        eos = HfGenerationConfig.from_pretrained(resolved.path).eos_token_id
        eos = self.tokenizer.eos_token_id if eos is None else eos
        self.stop_ids = {int(e) for e in eos} if isinstance(eos, (list, tuple)) else {int(eos)}
        logger.info(f"vLLM loaded {cfg.name} ({resolved.source}) as {self.dtype}")
        return LoadedModel(
            source=resolved.source,
            dtype=self.dtype,
            geometry=meta_geometry(resolved.path, cfg.revision, cfg.trust_remote_code),
            context_tokens=int(self.llm.llm_engine.model_config.max_model_len),
        )

    def prepare(self, prompts: list[Prompt], max_prompt_tokens: int | None) -> Workload:
        """Token ids of each prompt, templated and left-truncated as on `transformers`."""
        use_template = self.config.prompts.chat_template
        templated = use_template and getattr(self.tokenizer, "chat_template", None) is not None
        texts = prompt_texts(prompts, self.tokenizer, use_template)
        full = self.tokenizer(texts, add_special_tokens=not templated)["input_ids"]
        limit = max_prompt_tokens
        kept = [list(ids if limit is None else ids[-limit:]) for ids in full]
        truncated = 0 if limit is None else sum(len(ids) > limit for ids in full)
        load = self.config.load
        expected = load.num_requests if load.mode in ("rate", "concurrency") else None
        return Workload(prompts, kept, truncated=truncated, expected_requests=expected)

    def warmup_step(self, workload: Workload, max_new_tokens: int) -> Callable[[], float] | None:
        """One `LLM.generate` over the first `max_num_seqs` prompts (one scheduler batch)."""
        if not workload.items:
            return None
        params = self.sampling_params(max_new_tokens)
        first = [{"prompt_token_ids": ids} for ids in workload.items[: self.options.max_num_seqs]]

        def timed() -> float:
            start = time.perf_counter()
            self.llm.generate(first, params, use_tqdm=False)
            return (time.perf_counter() - start) * 1000.0

        return timed

    def sampling_params(self, max_new_tokens: int) -> Any:
        """The experiment's generation settings as vLLM's sampling parameters."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        gen = self.config.generation
        sampled = {"temperature": gen.temperature, "top_p": gen.top_p, "top_k": gen.top_k or 0}
        return SamplingParams(
            max_tokens=max_new_tokens,
            min_tokens=min(gen.min_new_tokens, max_new_tokens),
            seed=self.config.seed if gen.do_sample else None,
            output_kind=RequestOutputKind.DELTA,
            **(sampled if gen.do_sample else {"temperature": 0.0}),
        )

    def run(self, workload: Workload, requests_done: RequestsDoneFn) -> EngineOutput:
        """Queue every request at once and step the engine until all finished.

        Under a `load:` mode the requests arrive over time instead (`vllm_load.py`).
        """
        params = self.sampling_params(self.config.generation.max_new_tokens)
        engine = self.llm.llm_engine
        if self.config.load.mode != "offline":
            return serve_load_output(
                engine, workload, self.config, params, self.stop_ids, requests_done
            )
        submitted: dict[str, float] = {}
        for ids in workload.items:
            self._next_id += 1
            # Outputs carry this id; add_request returns vLLM's internal one.
            request_id = f"llem-{self._next_id}"
            submitted[request_id] = time.monotonic()
            engine.add_request(request_id, {"prompt_token_ids": ids}, params)
        steps = _step_until_done(engine, list(submitted), requests_done)
        return_s = time.monotonic()
        records, traces, shapes = [], [], []
        for prompt, ids, request_id in zip(
            workload.prompts, workload.items, submitted, strict=True
        ):
            final = steps.finals[request_id]
            n_out, eos = count_generated(steps.tokens[request_id], self.stop_ids)
            records.append(
                RequestRecord(
                    prompt_id=prompt.id,
                    input_tokens=len(final.prompt_token_ids),
                    output_tokens=n_out,
                    stopped_by_eos=eos,
                )
            )
            # Continuous batching runs each request's own prompt and decode steps: no
            # padded positions, so its executed FLOPs are its useful ones.
            shapes.append(
                BatchShape(rows=1, padded_prompt_tokens=len(ids), steps=n_out, padded=False)
            )
            times_s = steps.times_s[request_id]
            stats = engine_request_stats(final)
            traces.append(RequestTrace(submitted[request_id], times_s, n_out, stats))
        latency = measured_latencies_ms(traces, return_s)
        engine_latency = engine_latencies_ms(traces)
        warning = cross_check_warning(latency, engine_latency)
        return EngineOutput(
            requests=records,
            latency=latency,
            shapes=shapes,
            batch_sizes=steps.batch_sizes,
            engine_latency=engine_latency,
            warnings=[warning] if warning is not None else [],
        )

    def synchronize(self) -> None:
        """Nothing to wait for: `step()` returns once the engine delivered its tokens."""

    def helper_pids(self) -> list[int]:
        """The engine core and worker processes vLLM started in `load`."""
        return list(self._helper_pids)

    def close(self) -> None:
        """Stop vLLM's engine processes."""
        if self.llm is not None:
            self.llm.llm_engine.engine_core.shutdown()
            self.llm = None


@dataclass
class _Steps:
    """What the step loop saw, per request id; `batch_sizes`: requests served per step."""

    tokens: dict[str, list[int]]
    times_s: dict[str, list[float]]
    finals: dict[str, Any]
    batch_sizes: list[int]


def _step_until_done(engine: Any, order: list[str], requests_done: RequestsDoneFn) -> _Steps:
    """Step the engine until every request finished, stamping each step's tokens."""
    steps = _Steps({r: [] for r in order}, {r: [] for r in order}, {}, [])
    while engine.has_unfinished_requests():
        outputs = engine.step()
        now_s = time.monotonic()
        served, finished_before = 0, len(steps.finals)
        for output in outputs:
            new = list(output.outputs[0].token_ids)
            served += bool(new)
            steps.tokens[output.request_id].extend(new)
            steps.times_s[output.request_id].extend([now_s] * len(new))
            if output.finished:
                steps.finals[output.request_id] = output
        if served:
            steps.batch_sizes.append(served)
        if len(steps.finals) > finished_before:
            requests_done(len(steps.finals), sum(len(t) for t in steps.tokens.values()))
    return steps
