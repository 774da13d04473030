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
