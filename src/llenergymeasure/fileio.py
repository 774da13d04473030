"""Atomic file writes: temporary file in the same directory, flush, fsync, `os.replace`.

A reader therefore sees either the previous file or the complete new one, never a
partial write, even when the writer is killed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; move it into place on success.

    The caller writes the temporary file (by any library); on normal exit it is fsynced
    and renamed over `path`, on error it is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (created with the user's umask)."""
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems do not allow opening directories
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # fsync of a directory is not supported everywhere; the rename stands
    finally:
        os.close(fd)
