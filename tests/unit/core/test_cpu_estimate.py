"""The CPU estimate's full-load power: configured, from the CPU table, or the default."""

from __future__ import annotations

import psutil
import pytest

from llenergymeasure.core.energy_backends.cpu_tdp import (
    DEFAULT_SOCKET_TDP_W,
    DEFAULT_THREADS_PER_SOCKET,
    cpu_power_assumption,
    lookup_cpu,
)
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend


def test_a_224_thread_server_is_two_sockets_not_2240_w() -> None:
    power = cpu_power_assumption("Intel(R) Xeon(R) Platinum 8480+", logical_cores=224)
    assert power.full_load_w == pytest.approx(700.0)
    assert power.source == "table:Intel Xeon Platinum 8480+"


def test_a_vm_slice_counts_its_share_of_the_socket() -> None:
    power = cpu_power_assumption("Intel(R) Xeon(R) Platinum 8480+", logical_cores=2)
    assert power.full_load_w == pytest.approx(6.25)


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("AMD EPYC 9654 96-Core Processor", "AMD EPYC 9654"),
        ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", "Intel Xeon Gold 6248R"),
        ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", "Intel Xeon Gold 6248"),
        ("13th Gen Intel(R) Core(TM) i9-13900K", "Intel Core i9-13900K"),
        ("AMD Ryzen 9 7950X 16-Core Processor", "AMD Ryzen 9 7950X"),
        ("AMD EPYC", "AMD EPYC"),
        ("AMD EPYC Processor (with IBPB)", "AMD EPYC"),
        ("QEMU Virtual CPU version 2.5+", None),
        (None, None),
    ],
)
def test_model_names_match_their_table_entry(model: str | None, entry: str | None) -> None:
    spec = lookup_cpu(model)
    assert (spec.name if spec else None) == entry


def test_an_unknown_model_gets_the_documented_default() -> None:
    power = cpu_power_assumption("QEMU Virtual CPU version 2.5+", logical_cores=96)
    assert power.source == "default"
    expected_w = DEFAULT_SOCKET_TDP_W * 96 / DEFAULT_THREADS_PER_SOCKET
    assert power.full_load_w == pytest.approx(expected_w)
    assert "not in llem's table" in power.explanation


def test_configured_power_overrides_the_table() -> None:
    power = cpu_power_assumption("AMD EPYC 9654", logical_cores=192, configured_w=123.0)
    assert (power.full_load_w, power.source) == (123.0, "configured")


def test_the_estimate_records_which_assumption_it_used() -> None:
    cores = psutil.cpu_count(logical=True) or 1
    backend = CpuEstimateBackend(cpu_model="AMD EPYC 7763 64-Core Processor")
    assert backend.tdp_w == pytest.approx(280.0 * cores / 128)
    backend.start()
    measurement = backend.stop()
    assert measurement.tdp_source == "table:AMD EPYC 7763"
    assert "AMD EPYC 7763 TDP 280 W per 128 threads" in measurement.assumptions[0]
    configured = CpuEstimateBackend(tdp_w=50.0)
    configured.start()
    assert configured.stop().tdp_source == "configured"
