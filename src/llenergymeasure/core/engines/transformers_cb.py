"""`engine: transformers-cb`: transformers' own continuous batching.

The model loads as for `engine: transformers`; requests are not padded into static
batches but handed to transformers' continuous-batching manager (a paged KV cache and a
scheduler in a background thread), which joins and retires requests at every step.
The manager is created and started in warmup, so its set-up stays outside the energy
window, and stopped in `close`, after it.

Offline, every request arrives when the run starts: TTFT and end-to-end latency are
timed from that moment (queueing included) to the request's first and last token, on
the monotonic clock; ITL are the gaps between a request's own tokens. Output tokens
follow the same rule as the static engine: up to and including the first EOS.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from llenergymeasure.config.engines import ContinuousBatchingConfig
from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core import device as devices
from llenergymeasure.core.engines.base import EngineOutput, RequestsDoneFn, Workload
from llenergymeasure.core.engines.cb_load import (
    LoadRequest,
    load_request_name,
    serve_load,
    stopped_early_message,
)
from llenergymeasure.core.engines.cb_steps import StepRecorder
from llenergymeasure.core.engines.generation import (
    build_generation_config,
    count_generated,
    eos_ids,
    prompt_texts,
)
from llenergymeasure.core.engines.transformers import TransformersEngine
from llenergymeasure.core.flops import BatchShape
from llenergymeasure.core.latency import request_latencies_ms
from llenergymeasure.core.load.drive import served_requests
from llenergymeasure.core.parallel import ProcessLayout
from llenergymeasure.domain.experiment import RequestRecord
from llenergymeasure.domain.metrics import LatencySamples, MeasurementWarning
from llenergymeasure.errors import LlemError
from llenergymeasure.prompts import Prompt

# How long to wait for one result before checking that the manager is still alive.
RESULT_POLL_S = 1.0
STOP_TIMEOUT_S = 30.0


class ContinuousBatchingEngine(TransformersEngine):
    """One process's model served by transformers' continuous-batching manager."""

    name = "transformers-cb"

    def __init__(
        self, config: ExperimentConfig, device: str, layout: ProcessLayout | None = None
    ) -> None:
        super().__init__(config, device, layout)
        self.settings = config.transformers_cb or ContinuousBatchingConfig()
        self.manager: Any = None
        self.steps: StepRecorder | None = None
        self._clock_offset_s = 0.0

    def prepare(self, prompts: list[Prompt], max_prompt_tokens: int | None) -> Workload:
        """Each prompt's token ids, unpadded; with a budget, only its last tokens."""
        texts = prompt_texts(prompts, self.tokenizer, self.config.prompts.chat_template)
        templated = self.config.prompts.chat_template and bool(
            getattr(self.tokenizer, "chat_template", None)
        )
        ids = self.tokenizer(texts, add_special_tokens=not templated)["input_ids"]
        truncated = 0
        if max_prompt_tokens is not None:
            truncated = sum(len(row) > max_prompt_tokens for row in ids)
            ids = [row[-max_prompt_tokens:] for row in ids]
        load = self.config.load
        expected = load.num_requests if load.mode in ("rate", "concurrency") else None
        return Workload(
            prompts, [list(row) for row in ids], truncated=truncated, expected_requests=expected
        )

    def warmup_step(self, workload: Workload, max_new_tokens: int) -> Callable[[], float] | None:
        """Serve the first `max_requests_per_batch` prompts with the warmup's budget."""
        if not workload.items:
            return None
        self._start_manager(workload)
        first = workload.items[: self.settings.max_requests_per_batch]

        def run_once() -> float:
            start = time.perf_counter()
            self._serve(first, max_new_tokens, lambda *_: None)
            return (time.perf_counter() - start) * 1000.0

        return run_once

    def run(self, workload: Workload, requests_done: RequestsDoneFn) -> EngineOutput:
        """Every request at once; records in prompt order, timed from the submission."""
        if not workload.items:
            return EngineOutput(requests=[], latency=LatencySamples())
        self._start_manager(workload)
        stop_ids = eos_ids(self.manager.generation_config)
        devices.reset_peak_memory(self.device)
        if self.config.load.mode != "offline":
            return self._run_load(workload, stop_ids, requests_done)
        start_s = time.monotonic()
        outputs = self._serve(workload.items, self.config.generation.max_new_tokens, requests_done)
        return_s = time.monotonic()
        requests, samples, shapes = [], [], []
        for prompt, ids, output in zip(workload.prompts, workload.items, outputs, strict=True):
            n_out, eos = count_generated(list(output.generated_tokens), stop_ids)
            requests.append(
                RequestRecord(
                    prompt_id=prompt.id,
                    input_tokens=len(ids),
                    output_tokens=n_out,
                    stopped_by_eos=eos,
                )
            )
            token_times = [t + self._clock_offset_s for t in (output.timestamps or [])]
            samples.append(request_latencies_ms(start_s, token_times, [n_out], return_s))
            # No padding: each request runs its own prompt and its own decode steps.
            shapes.append(
                BatchShape(rows=1, padded_prompt_tokens=len(ids), steps=n_out, padded=False)
            )
        return EngineOutput(
            requests=requests,
            latency=LatencySamples.concat(samples),
            shapes=shapes,
            peak_memory_mb=devices.peak_memory_mb(self.device),
        )

    def _run_load(
        self, workload: Workload, stop_ids: set[int], requests_done: RequestsDoneFn
    ) -> EngineOutput:
        """The `load:` section's arrivals; the prompts repeat as often as it needs."""
        pairs = zip(workload.prompts, workload.items, strict=True)
        self.steps.start()
        try:
            run = serve_load(
                self.manager,
                [LoadRequest(prompt, ids) for prompt, ids in pairs],
                self.config,
                stop_ids=stop_ids,
                clock_offset_s=self._clock_offset_s,
                requests_done=requests_done,
            )
        finally:
            self.steps.stop()
        numbers = {load_request_name(r.request_id): r.request_id for r in run.requests}
        served = [r for r in run.requests if r.error is None]
        requests = served_requests(served, workload.prompts)
        # Timed from each request's arrival: queueing is part of what a client waits.
        samples = [
            request_latencies_ms(r.arrival_s, r.token_times_s, [r.output_tokens], r.last_token_s)
            for r in served
        ]
        return EngineOutput(
            requests=requests,
            latency=LatencySamples.concat(samples),
            shapes=[
                BatchShape(
                    rows=1, padded_prompt_tokens=q.input_tokens, steps=q.output_tokens, padded=False
                )
                for q in requests
            ],
            peak_memory_mb=devices.peak_memory_mb(self.device),
            load_run=run,
            steps=self.steps.steps(numbers, run.start_monotonic_s),
            warnings=self._step_warnings(),
        )

    def close(self) -> None:
        """Stop the manager's thread and free its cache, then drop the model."""
        if self.manager is not None:
            self.manager.stop(block=True, timeout=STOP_TIMEOUT_S)
            self.manager = None
        super().close()

    def _start_manager(self, workload: Workload) -> None:
        from transformers.generation.configuration_utils import (
            ContinuousBatchingConfig as HfContinuousBatchingConfig,
        )

        if self.manager is not None:
            return
        generation = build_generation_config(self.config.generation, self.model, self.tokenizer)
        longest = max(len(ids) for ids in workload.items)
        self.manager = self.model.init_continuous_batching(
            generation_config=generation,
            continuous_batching_config=HfContinuousBatchingConfig(
                **self._cache_sizes(longest),
                max_requests_per_batch=self.settings.max_requests_per_batch,
                page_size=self.settings.page_size,
                scheduler_type=self.settings.scheduler,
                seed=self.config.seed,
                allow_block_sharing=self.settings.enable_prefix_caching,
                # Keep the attention the model was loaded with: a silent switch to flash
                # attention would change what is measured.
                auto_switch_to_flash=False,
            ),
        )
        self.steps = StepRecorder(self.manager)
        self.manager.start()
        # transformers stamps tokens with perf_counter; llem's clock is monotonic.
        self._clock_offset_s = time.monotonic() - time.perf_counter()

    def _step_warnings(self) -> list[MeasurementWarning]:
        reason = self.steps.unavailable if self.steps is not None else None
        if reason is None:
            return []
        return [
            MeasurementWarning(
                code="no_engine_steps",
                message=f"the energy is not split by phase and request: {reason}",
                remediation="use the transformers version llem pins (pyproject.toml)",
            )
        ]

    def _cache_sizes(self, longest_prompt: int) -> dict[str, int | None]:
        """The cache and step sizes, fixed on the CPU where transformers has no default."""
        settings = self.settings
        if devices.on_gpu(self.device):
            num_blocks = (
                None
                if settings.kv_cache_tokens is None
                else math.ceil(settings.kv_cache_tokens / settings.page_size)
            )
            return {"num_blocks": num_blocks, "max_batch_tokens": settings.max_batch_tokens}
        longest = max(
            self.config.generation.max_new_tokens, self.config.measurement.warmup.max_new_tokens
        )
        cache_tokens = settings.kv_cache_tokens or settings.max_requests_per_batch * (
            longest_prompt + longest
        )
        return {
            "num_blocks": math.ceil(cache_tokens / settings.page_size),
            "max_batch_tokens": settings.max_batch_tokens or max(256, longest_prompt),
        }

    def _serve(
        self, inputs: list[list[int]], max_new_tokens: int, requests_done: RequestsDoneFn
    ) -> list[Any]:
        """Submit `inputs`, wait for every one to finish; results in input order.

        Raises:
            LlemError: a request failed, or the manager's thread died.

        """
        ids = self.manager.add_requests(
            inputs=inputs, max_new_tokens=max_new_tokens, record_timestamps=True
        )
        stop_ids = eos_ids(self.manager.generation_config)
        results: dict[str, Any] = {}
        output_tokens = 0
        while len(results) < len(ids):
            output = self.manager.get_result(timeout=RESULT_POLL_S)
            if output is None:
                if not self.manager.is_running():
                    raise LlemError(stopped_early_message(self.manager))
                continue
            if not output.is_finished():
                continue
            if output.error is not None:
                raise LlemError(f"request {output.request_id} failed: {output.error}")
            results[output.request_id] = output
            output_tokens += count_generated(list(output.generated_tokens), stop_ids)[0]
            requests_done(len(results), output_tokens)
        return [results[i] for i in ids]
