"""The one error hierarchy of llem.

Every error a user can fix derives from `LlemError`; the CLI prints its message on
one line and exits with code 2. Messages say what is wrong and how to fix it.
"""

from __future__ import annotations


class LlemError(Exception):
    """An error the user can act on (bad input, missing file, unavailable hardware)."""


class ConfigError(LlemError):
    """The experiment config is invalid: the message names the file and the field."""


class ModelNotFound(LlemError):
    """No model could be resolved from the given name."""


class PromptsError(LlemError):
    """The prompt source is missing, empty or unreadable."""


class DeviceError(LlemError):
    """A requested measurement device or backend is not available."""


class ResultsError(LlemError):
    """A result file or experiment id is invalid, unreadable or unsafe."""


class IncompleteExperiment(ResultsError):
    """An experiment lacks results or markers that aggregation requires."""


class UnverifiedExperiment(ResultsError):
    """The processes do not add up: their windows do not overlap or they share a device."""


class WorkerFailed(LlemError):
    """A worker of a multi-process run failed; the message names its rank and exit status."""
