from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from llenergymeasure.errors import StorageError
from llenergymeasure.fileio import atomic_target, atomic_write_bytes


def test_a_failed_write_keeps_the_previous_file_and_says_why(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    atomic_write_bytes(target, b"previous")
    with pytest.raises(StorageError) as failed:
        with atomic_target(target) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(failed.value) == (
        f"no space left on device while writing {target}; nothing was replaced"
    )
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_a_folder_that_cannot_be_made_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match="while writing .*file/sub/x.json; nothing was replaced"):
        atomic_write_bytes(tmp_path / "file" / "sub" / "x.json", b"{}")


def test_other_errors_pass_unchanged(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with atomic_target(tmp_path / "x") as tmp:
            tmp.write_bytes(b"x")
            raise ValueError("not about storage")
    assert list(tmp_path.iterdir()) == []


def record_os_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record, as llenergymeasure.fileio sees them, which path each fsync and replace touched.

    The OS functions still run: only their arguments are noted (fds mapped back to paths).
    """
    calls: list[tuple[str, str]] = []
    fd_paths: dict[int, str] = {}
    real_open, real_fsync, real_replace = os.open, os.fsync, os.replace

    def traced_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        fd_paths[fd] = str(path)
        return fd

    def traced_fsync(fd):
        calls.append(("fsync", fd_paths.get(fd, "?")))
        return real_fsync(fd)

    def traced_replace(src, dst):
        calls.append(("replace", f"{src} -> {dst}"))
        return real_replace(src, dst)

    import llenergymeasure.fileio as fileio

    monkeypatch.setattr(fileio.os, "open", traced_open)
    monkeypatch.setattr(fileio.os, "fsync", traced_fsync)
    monkeypatch.setattr(fileio.os, "replace", traced_replace)
    return calls


def test_the_new_content_is_fsynced_before_it_replaces_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_bytes(b"previous")
    calls = record_os_calls(monkeypatch)
    atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    (replaced,) = [detail for kind, detail in calls if kind == "replace"]
    tmp, dst = replaced.split(" -> ")
    assert dst == str(target) and Path(tmp).parent == tmp_path and tmp != str(target)
    assert calls.index(("fsync", tmp)) < calls.index(("replace", replaced))
    assert calls[calls.index(("replace", replaced)) + 1 :] == [("fsync", str(tmp_path))]
    assert target.read_bytes() == b"new"


def test_the_old_file_is_whole_until_the_new_one_is_moved_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "result.json"
    target.write_bytes(b"previous")
    seen_at_replace: list[tuple[bytes, bytes]] = []
    real_replace = os.replace

    def replace_after_looking(src, dst):
        seen_at_replace.append((Path(dst).read_bytes(), Path(src).read_bytes()))
        return real_replace(src, dst)

    import llenergymeasure.fileio as fileio

    monkeypatch.setattr(fileio.os, "replace", replace_after_looking)
    atomic_write_bytes(target, b"new content")
    assert seen_at_replace == [(b"previous", b"new content")]
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
