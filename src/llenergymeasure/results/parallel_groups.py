"""Tensor-parallel groups in an experiment's results: who ran what, and whose tokens count.

The ranks of one group compute one model together and record the same requests; the
aggregate counts a group's requests and tokens once, from one of its ranks
(`counting_processes`), after checking that its ranks agree (`check_parallel_groups`).
"""

from __future__ import annotations

from collections import defaultdict

from llenergymeasure.domain.experiment import RawProcessResult


def data_groups(results: list[RawProcessResult]) -> dict[int, list[RawProcessResult]]:
    """Processes by data group, each group's ranks in tensor-rank order.

    A process without a placement (older files) is a group of its own, keyed by the
    negative of its index plus one so that it never meets a real group.
    """
    groups: dict[int, list[RawProcessResult]] = defaultdict(list)
    for r in results:
        groups[group_key(r)].append(r)
    for members in groups.values():
        members.sort(key=lambda r: r.parallel.tensor_rank if r.parallel else 0)
    return dict(groups)


def group_key(result: RawProcessResult) -> int:
    """The data group of a process (`data_groups` says how older files are keyed)."""
    return result.parallel.data_group if result.parallel else -1 - result.process_index


def counting_processes(results: list[RawProcessResult]) -> list[RawProcessResult]:
    """One process per data group, whose requests and tokens stand for its group's.

    Rank 0 of the group, or its lowest rank present when a partial aggregate lacks it.
    """
    return sorted(
        (members[0] for members in data_groups(results).values()), key=lambda r: r.process_index
    )


def check_parallel_groups(results: list[RawProcessResult]) -> tuple[bool, list[str]]:
    """The ranks of each tensor-parallel group ran the same requests with the same tokens.

    They compute one model together, so any difference (other prompts, other token
    counts) means the results do not belong to one group and its tokens cannot be counted
    once.
    """
    problems = []
    for group, members in sorted(data_groups(results).items()):
        lead = members[0]
        expected = [(q.prompt_id, q.input_tokens, q.output_tokens) for q in lead.requests]
        for other in members[1:]:
            ran = [(q.prompt_id, q.input_tokens, q.output_tokens) for q in other.requests]
            if ran != expected:
                problems.append(
                    f"tensor-parallel group {group}: process {other.process_index} ran other "
                    f"requests or tokens than process {lead.process_index} "
                    f"({other.output_tokens} vs {lead.output_tokens} output tokens)"
                )
    return not problems, problems
