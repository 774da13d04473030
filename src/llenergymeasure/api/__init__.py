"""llem's public Python API; `import llenergymeasure as llem` reaches it lazily.

See docs/python-api.md.
"""

from __future__ import annotations

from llenergymeasure.api.experiments import aggregate, load_config, load_result, run_experiment
from llenergymeasure.api.measurement import EnergyMonitor, Measurement, measure
from llenergymeasure.api.ranks import RankResults

__all__ = [
    "EnergyMonitor",
    "Measurement",
    "RankResults",
    "aggregate",
    "load_config",
    "load_result",
    "measure",
    "run_experiment",
]
