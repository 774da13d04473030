from llenergymeasure.config.loader import load_config
from llenergymeasure.config.models import ExperimentConfig

__all__ = ["ExperimentConfig", "load_config"]
