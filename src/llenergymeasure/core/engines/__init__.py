"""Inference engines behind one seam (`base.Engine`); `create_engine` picks the configured one."""

from __future__ import annotations

from llenergymeasure.config.models import ExperimentConfig
from llenergymeasure.core.engines.base import Engine, EngineOutput, LoadedModel, Workload
from llenergymeasure.core.parallel import ProcessLayout

__all__ = ["Engine", "EngineOutput", "LoadedModel", "Workload", "create_engine"]


def create_engine(
    config: ExperimentConfig, device: str, layout: ProcessLayout | None = None
) -> Engine:
    """The engine `config.engine` names, for one process on `device`.

    With `load.endpoint`, the requests go to that server instead, whatever its engine.
    `layout` places the process in the parallel layout (`core/parallel.py`); None: one
    process alone on `device`.
    """
    if config.load.endpoint is not None:
        from llenergymeasure.core.engines.endpoint import EndpointEngine

        return EndpointEngine(config, device)
    if config.engine == "transformers-cb":
        from llenergymeasure.core.engines.transformers_cb import ContinuousBatchingEngine

        return ContinuousBatchingEngine(config, device, layout)
    if config.engine == "vllm":
        from llenergymeasure.core.engines.vllm import VllmEngine

        return VllmEngine(config, device)
    from llenergymeasure.core.engines.transformers import TransformersEngine

    return TransformersEngine(config, device, layout)
