"""The trapezoidal integral of sampled GPU power, per device and summed."""

from __future__ import annotations

import pytest

from llenergymeasure.core.power_integral import power_integrals_j, total_integral_j
from llenergymeasure.domain.samples import CPU_DEVICE_INDEX, PowerThermalSample


def gpu(t_s: float, power_w: float | None, index: int = 0) -> PowerThermalSample:
    return PowerThermalSample(t_s=t_s, device_index=index, power_w=power_w)


def test_power_integral_is_the_trapezoid_summed_over_devices() -> None:
    samples = [gpu(0.0, 100.0), gpu(1.0, 300.0), gpu(2.0, 300.0)]
    samples += [gpu(0.0, 50.0, 1), gpu(2.0, 50.0, 1), PowerThermalSample(1.0, CPU_DEVICE_INDEX)]
    assert total_integral_j(power_integrals_j(samples)) == 200.0 + 300.0 + 100.0


def test_power_integral_is_clipped_to_the_window() -> None:
    samples = [gpu(0.0, 100.0), gpu(1.0, 300.0), gpu(2.0, 300.0)]
    # from 0.5 s (200 W, interpolated) to 1.5 s: 0.5 x (200 + 300) / 2 + 0.5 x 300
    assert total_integral_j(power_integrals_j(samples, 0.5, 1.5)) == pytest.approx(275.0)
    # past the last sample the last reading holds
    assert total_integral_j(power_integrals_j(samples, 1.0, 3.0)) == pytest.approx(600.0)


def test_power_integral_skips_missing_readings_and_needs_two() -> None:
    assert power_integrals_j([gpu(0.0, 100.0), gpu(1.0, None), gpu(2.0, 100.0)]) == {0: 200.0}
    assert power_integrals_j([gpu(0.0, 100.0), gpu(0.0, 80.0, 1), gpu(1.0, 80.0, 1)]) == {
        0: None,
        1: 80.0,
    }
    assert total_integral_j(power_integrals_j([gpu(0.0, 100.0)])) is None
    assert power_integrals_j([PowerThermalSample(0.0, CPU_DEVICE_INDEX)]) == {}
    assert total_integral_j({}) is None
