"""Sharding prompts across processes: deterministic, no loss, no duplicate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llenergymeasure.orchestration.worker import cpu_threads_per_process, shard_prompts
from llenergymeasure.prompts import Prompt


@given(st.integers(0, 200), st.integers(1, 17))
def test_shards_partition_the_prompts(num_prompts: int, count: int) -> None:
    prompts = [Prompt(id=f"p{k}", text=f"t{k}") for k in range(num_prompts)]
    shards = [shard_prompts(prompts, index, count) for index in range(count)]
    ids = [p.id for shard in shards for p in shard]
    assert sorted(ids) == sorted(p.id for p in prompts)
    assert len(ids) == len(set(ids))
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1
    assert shards == [shard_prompts(prompts, index, count) for index in range(count)]


@pytest.mark.parametrize(("local", "world", "expected"), [(None, 2, 4), ("1", 2, 8), ("16", 16, 1)])
def test_cpu_threads_split_the_hosts_cores(
    monkeypatch: pytest.MonkeyPatch, local: str | None, world: int, expected: int
) -> None:
    monkeypatch.setattr("psutil.cpu_count", lambda logical=True: 8)
    if local is None:
        monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    else:
        monkeypatch.setenv("LOCAL_WORLD_SIZE", local)
    assert cpu_threads_per_process(world) == expected
