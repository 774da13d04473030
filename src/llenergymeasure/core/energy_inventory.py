"""Which energy sources this machine has, for `llem env` and bug reports.

The same choice `select_energy_backends` makes under `auto`: NVML for each visible GPU
(with its energy counter, or its power integrated where it has none), and for the host
RAPL where a counter is readable, else the estimate with its full-load power assumption.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llenergymeasure.core.energy_backends.cuda_devices import (
    open_cuda_devices,
    visible_cuda_ordinals,
)
from llenergymeasure.core.energy_backends.estimate import CpuEstimateBackend
from llenergymeasure.core.energy_backends.nvml import NvmlBackend
from llenergymeasure.core.energy_backends.nvml_library import init_nvml
from llenergymeasure.core.energy_backends.rapl import POWERCAP_ROOT, find_rapl_zones
from llenergymeasure.errors import DeviceError


def energy_sources(
    cuda_ordinals: Sequence[int] | None = None, powercap_root: Path = POWERCAP_ROOT
) -> dict[str, Any]:
    """The GPU and host energy sources, as JSON-ready data.

    Args:
        cuda_ordinals: the CUDA devices to describe; None: every visible one.
        powercap_root: where the RAPL zones are (`/sys/class/powercap`).

    Returns:
        `gpu`: NVML's state and one entry per device (UUID, name, method, what its
        counter or power reading covers); `host`: the RAPL zones added and those left
        out, the estimate's full-load power and where it came from, and which of the two
        `auto` uses.

    """
    rapl = find_rapl_zones(powercap_root)
    estimate = CpuEstimateBackend()
    return {
        "gpu": _gpu_sources(cuda_ordinals),
        "host": {
            "auto_uses": "rapl" if any(d.kind == "cpu" for d in rapl.domains) else "estimate",
            "rapl_zones": [
                {"name": d.name, "kind": d.kind, "path": str(d.energy_path)} for d in rapl.domains
            ],
            "rapl_left_out": list(rapl.left_out),
            "estimate_full_load_w": estimate.tdp_w,
            "estimate_source": estimate.tdp_source,
            "estimate_assumptions": list(estimate.assumptions),
        },
    }


def _gpu_sources(cuda_ordinals: Sequence[int] | None) -> dict[str, Any]:
    try:
        init_nvml()
    except DeviceError as e:
        return {"nvml": "unavailable", "problem": str(e), "devices": []}
    ordinals = list(visible_cuda_ordinals() if cuda_ordinals is None else cuda_ordinals)
    devices = []
    for ordinal in ordinals:
        try:
            (device,) = open_cuda_devices([ordinal])
            method = NvmlBackend([device]).method
        except DeviceError as e:
            devices.append({"cuda_ordinal": ordinal, "problem": str(e)})
            continue
        devices.append(
            {
                "cuda_ordinal": ordinal,
                "uuid": device.uuid,
                "name": device.name,
                "method": method,
                "energy_scope": device.energy_scope if method == "nvml_counter" else None,
                "power_field": device.power_field,
                "power_scope": device.power_scope,
                "is_mig": device.is_mig,
            }
        )
    return {"nvml": "available", "problem": None, "devices": devices}
