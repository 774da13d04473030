"""Atomic file writes: temporary file in the same directory, flush, fsync, `os.replace`.

A reader therefore sees either the previous file or the complete new one, never a
partial write, even when the writer is killed. A write that fails (a full disk, no
permission) removes its temporary file, leaves the previous file as it was, and raises
`StorageError` naming the file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llenergymeasure.errors import StorageError


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """Yield a unique temporary path beside `path`; move it into place on success.

    The caller writes the temporary file (by any library); on normal exit it is fsynced
    and renamed over `path`, on error it is removed and `path` is left untouched. The
    temporary name holds the pid and a random token, so concurrent writers never share it.

    Raises:
        StorageError: the file could not be written (an `OSError` of the caller's write,
            the fsync or the rename); nothing was replaced.

    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        _remove_quietly(tmp)
        if isinstance(exc, OSError):
            raise StorageError(
                f"{describe_os_error(exc)} while writing {path}; nothing was replaced"
            ) from exc
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (created with the user's umask)."""
    with atomic_target(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def describe_os_error(exc: OSError) -> str:
    """`no space left on device`, `permission denied`, ...: the reason, in lower case.

    Libraries that write files themselves (pyarrow) put the reason in their message
    rather than in `errno`; their message is kept then.
    """
    if exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _remove_quietly(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass  # the write already failed; a leftover `.tmp` is never read as a result


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
