"""The host row read from /proc gives psutil's figures, for the process that opened it."""

from __future__ import annotations

import mmap
import multiprocessing
import os
import time
from pathlib import Path

import psutil
import pytest

from llenergymeasure.core.host_row import ProcReader, PsutilReader, host_reader

pytestmark = pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux /proc")


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def resident_block(mb: int) -> mmap.mmap:
    """`mb` MiB made resident: a fresh anonymous mapping with every page written (an
    allocator may hand a long-lived process memory that is resident already, and untouched
    pages never are)."""
    block = mmap.mmap(-1, mb * 2**20)
    for offset in range(0, len(block), mmap.PAGESIZE):
        block[offset] = 1
    return block


def test_resident_memory_is_psutils_and_follows_an_allocation() -> None:
    reader = host_reader(os.getpid())
    assert isinstance(reader, ProcReader)
    before = reader.rss_mb()
    assert before == pytest.approx(psutil.Process().memory_info().rss / 2**20, abs=2)
    block = resident_block(64)
    after = reader.rss_mb()
    assert after == pytest.approx(psutil.Process().memory_info().rss / 2**20, abs=2)
    assert after - before > 60
    block.close()


@pytest.mark.parametrize("work", [spin, time.sleep], ids=["busy", "idle"])
def test_utilisation_is_psutils_over_the_same_span(work) -> None:
    reader = host_reader(os.getpid())
    psutil.cpu_percent(interval=None)
    reader.cpu_util_pct()
    work(0.5)
    ours, theirs = reader.cpu_util_pct(), psutil.cpu_percent(interval=None)
    assert 0.0 <= ours <= 100.0
    assert ours == pytest.approx(theirs, abs=5)
    if work is spin:  # one of the host's cores kept busy
        assert ours >= 100 / os.cpu_count() - 10


def _child_reading(reader: ProcReader, conn) -> None:
    own = psutil.Process()
    before = reader.rss_mb(), own.memory_info().rss / 2**20
    block = resident_block(128)
    conn.send((before, (reader.rss_mb(), own.memory_info().rss / 2**20)))
    block.close()


def test_a_forked_sampling_process_reads_the_process_that_opened_the_reader() -> None:
    reader = host_reader(os.getpid())
    parent_conn, child_conn = multiprocessing.get_context("fork").Pipe()
    child = multiprocessing.get_context("fork").Process(
        target=_child_reading, args=(reader, child_conn)
    )
    child.start()
    (read_before, own_before), (read_after, own_after) = parent_conn.recv()
    child.join(10)
    assert own_after - own_before > 120  # the child grew by its allocation
    assert abs(read_after - read_before) < 8  # what it read, this process, did not
    assert read_after == pytest.approx(psutil.Process().memory_info().rss / 2**20, abs=16)


def test_without_proc_psutil_reads_the_row(tmp_path: Path) -> None:
    reader = host_reader(os.getpid(), proc=tmp_path)
    assert isinstance(reader, PsutilReader)
    assert reader.rss_mb() == pytest.approx(psutil.Process().memory_info().rss / 2**20, abs=2)
    spin(0.2)
    assert 0.0 < reader.cpu_util_pct() <= 100.0
