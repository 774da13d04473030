"""llem's logger: loguru's, disabled for library users until the `llem` CLI enables it.

Every module logs through `from llenergymeasure.log import logger`, so loguru is loaded
with the first module that logs, not by `import llenergymeasure` (the CLI's `--help`
never needs it).
"""

from __future__ import annotations

from loguru import logger

logger.disable("llenergymeasure")

__all__ = ["logger"]
