"""The one error hierarchy of llem.

Every error a user can fix derives from `LlemError`; the CLI prints its message on
one line and exits with code 2. Messages say what is wrong and how to fix it.
"""

from __future__ import annotations

import signal


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


class StorageError(LlemError):
    """A file could not be written (disk full, no permission); the previous version stands."""


class Interrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM; files already written are kept.

    A `KeyboardInterrupt`, so that everything that cleans up after Ctrl-C does the same
    after SIGTERM. The message, when there is one, says where the experiment was left.
    """

    def __init__(self, signum: int = signal.SIGINT, message: str = "") -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process ended by that signal."""
        return 128 + self.signum

    @property
    def signal_name(self) -> str:
        """`SIGINT`, `SIGTERM`, ..."""
        return signal.Signals(self.signum).name
