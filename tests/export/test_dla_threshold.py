"""The DLA form's threshold ``Clip((U - theta) * g1 * g2, 0, 1)`` is the comparison ``U > theta``, bit for bit.

Golden-style, as tests/test_neuron.py: every finite FP16 value, and every FP32 value within 2^-10 of
theta plus a million spread over the range, go through the same arithmetic the graph does (one
rounding per operation, numpy's IEEE float16/float32), and the result must be exactly 0 or 1 and
equal to the comparison.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_snn.export.dla import spike_gains, ulp_above

THRESHOLDS = [1.0, 0.5, 1.5, 0.3, 2.0]


def dla_fire(u: np.ndarray, theta: float, gains, dtype) -> np.ndarray:
    """The graph's ops in ``dtype``: Sub, one Mul per gain, Clip to [0, 1]."""
    x = u.astype(dtype) - dtype(theta)
    for gain in gains:
        x = (x * dtype(gain)).astype(dtype)
    return np.clip(x, dtype(0), dtype(1))


def all_finite_fp16() -> np.ndarray:
    bits = np.arange(2 ** 16, dtype=np.uint32).astype(np.uint16)
    values = bits.view(np.float16)
    return values[np.isfinite(values)]


def fp32_near(theta: float) -> np.ndarray:
    center = np.float32(theta).view(np.int32)
    window = int(round(2 ** -10 / ulp_above(theta, "fp32")))  # every float32 within 2^-10 of theta
    near = (center + np.arange(-window, window + 1, dtype=np.int64)).astype(np.int32).view(np.float32)
    spread = np.random.default_rng(0).normal(theta, 4.0, 1_000_000).astype(np.float32)
    extremes = np.array([np.finfo(np.float32).max, -np.finfo(np.float32).max, 0.0, -0.0, 1e-30, -1e-30], np.float32)
    return np.concatenate([near, spread, extremes])


@pytest.mark.parametrize("theta", THRESHOLDS)
def test_every_fp16_membrane_fires_exactly_as_the_comparison(theta):
    u = all_finite_fp16()
    with np.errstate(over="ignore", invalid="ignore"):
        spikes = dla_fire(u, theta, spike_gains(theta), np.float16)
    want = (u > np.float16(theta)).astype(np.float16)
    np.testing.assert_array_equal(spikes, want)
    assert not np.isnan(spikes).any()


@pytest.mark.parametrize("theta", THRESHOLDS)
def test_fp32_membranes_near_and_far_from_theta_fire_exactly_as_the_comparison(theta):
    u = fp32_near(theta)
    with np.errstate(over="ignore"):
        spikes = dla_fire(u, theta, spike_gains(theta), np.float32)
    np.testing.assert_array_equal(spikes, (u > np.float32(theta)).astype(np.float32))


def test_the_gain_for_theta_1():
    assert spike_gains(1.0, finest="fp16") == (2048.0,)  # 2 / 2^-10: the FP16-only gain
    assert spike_gains(1.0) == (4096.0, 4096.0)  # 2 / 2^-23 = 2^24, each factor finite in FP16
    assert all(g <= 2 ** 15 for theta in THRESHOLDS for g in spike_gains(theta))


def test_a_gain_one_binade_too_small_is_not_exact():
    """The smallest U above theta must reach the clip: with g = 1 / ulp it gives exactly 1 only by luck of
    rounding, with g = 1 / (2 ulp) it gives 0.5, a non-binary spike."""
    theta = 1.0
    u = np.array([np.nextafter(np.float32(theta), np.float32(2))], np.float32)
    too_small = tuple(g / 4 for g in spike_gains(theta)[:1]) + spike_gains(theta)[1:]
    assert dla_fire(u, theta, too_small, np.float32)[0] == 0.5
    assert dla_fire(u, theta, spike_gains(theta), np.float32)[0] == 1.0


def test_fp16_gain_alone_is_not_exact_in_fp32():
    """Why the gain is taken for FP32: 2048 suffices in FP16 but not for FP32 membranes just above 1."""
    u = np.array([1.0 + 2 ** -20], np.float32)
    assert dla_fire(u, 1.0, spike_gains(1.0, finest="fp16"), np.float32)[0] < 1.0
