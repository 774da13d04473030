"""The sampling process and energy sources a `measure` object keeps for all its windows.

A window that forks its own sampling process after the user's model is loaded pays the
fork (35-100 ms for a process holding a model) and, while the child lives, a
copy-on-write fault at this process's first write to each page the two share: about
9 % of a SmolLM2 `generate` loop (docs/performance.md). Kept for the object's life, the
child is forked once, when the object is created (before the model loads, it shares
almost nothing), and its sources (this process's GPUs as NVML sees them, read by the
window's energy backends too) live as long. One window at a time uses it; a window
opened while it is lent (a nested `with m: with m:`) opens its own, as does every window
once the child has ended (then with a warning). The child and the sources are released
when the object is garbage-collected or this process exits.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

from llenergymeasure.core.energy_backends import EnergySources
from llenergymeasure.core.sampler_process import ERROR_KEY, ProcessSampler, can_fork
from llenergymeasure.core.window import window_sample_sources
from llenergymeasure.log import logger


class KeptSampler:
    """A sampling process and the sources it reads, lent to one window at a time.

    `sources` stays open until `close` (or the garbage collection of this object);
    `problem` says why the kept child no longer serves windows (None while it does, or
    where it never started: windows then open their own, which warn as they always do).
    """

    def __init__(self, open_sources: Callable[[], EnergySources], interval_ms: int) -> None:
        self.sources = open_sources()
        self.owner_pid = os.getpid()
        self.sampler: ProcessSampler | None = None
        self.problem: str | None = None
        self._lent = False
        self._lock = threading.Lock()
        if can_fork():
            sampled = window_sample_sources(self.sources.gpu_sample_source())
            try:
                self.sampler = ProcessSampler(sampled, interval_ms)
            except OSError as e:
                logger.debug(f"sampler: no kept sampling process ({e}); one per window")
        self._finalizer = weakref.finalize(self, _release, self.sources, self.sampler)

    def lend(self) -> ProcessSampler | None:
        """The kept sampling process for one window; None while lent, or once it has ended.

        None in a process forked from the owner (a data loader's worker): the child and its
        pipe are the owner's, so such a process opens its own for each window.
        """
        if os.getpid() != self.owner_pid:
            return None
        with self._lock:
            if self._lent or self.sampler is None:
                return None
            if not self.sampler.alive:
                self.problem = (
                    f"the measure object's sampling process (pid {self.sampler.pid}) "
                    f"had ended: {self.sampler.errors.get(ERROR_KEY, 'it exited')}"
                )
                logger.warning(f"sampler: {self.problem}; each window forks its own from now")
                self.sampler.close()
                self.sampler = None
                return None
            self._lent = True
            return self.sampler

    def give_back(self) -> None:
        """The window that was lent the sampling process has closed."""
        with self._lock:
            self._lent = False

    def close(self) -> None:
        """End the child and release the sources (once; also on garbage collection)."""
        self._finalizer()


def _release(sources: EnergySources, sampler: ProcessSampler | None) -> None:
    """What `KeptSampler.close` releases; holds no reference to the object itself."""
    if sampler is not None:
        sampler.close()
    sources.close()
