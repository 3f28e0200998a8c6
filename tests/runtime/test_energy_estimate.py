"""The paper's operation-count energy estimate, checked against hand calculations for dl-vgg9."""

from __future__ import annotations

import numpy as np
import pytest

from edge_snn.errors import UserError
from edge_snn.runtime.energy_estimate import LayerCost, estimate_energy, spike_rate

pytestmark = pytest.mark.runtime


def dl_vgg9_64x64() -> list[LayerCost]:
    """Spiking-DeepLab at 64x64 input, 3 in, 21 classes (PAPER.md): convs only, pools change H, W."""
    return [
        LayerCost("conv1", (3, 3), 3, 64, 64, 64),
        LayerCost("conv2", (3, 3), 64, 64, 64, 64),
        LayerCost("conv3", (3, 3), 64, 128, 32, 32),
        LayerCost("conv4", (3, 3), 128, 128, 32, 32),
        LayerCost("conv5", (3, 3), 128, 256, 16, 16),
        LayerCost("conv6", (3, 3), 256, 256, 16, 16),
        LayerCost("conv7", (3, 3), 256, 256, 16, 16),  # dilation 2: same count
        LayerCost("conv8", (3, 3), 256, 1024, 16, 16),  # dilation 12
        LayerCost("classifier", (1, 1), 1024, 21, 16, 16),
    ]


def test_dl_vgg9_flops_per_layer_and_total():
    flops = [layer.flops for layer in dl_vgg9_64x64()]
    # 9 * H * W * C_in * C_out, by hand
    assert flops == [
        9 * 64 * 64 * 3 * 64,        # 7,077,888
        9 * 64 * 64 * 64 * 64,       # 150,994,944
        9 * 32 * 32 * 64 * 128,      # 75,497,472
        9 * 32 * 32 * 128 * 128,     # 150,994,944
        9 * 16 * 16 * 128 * 256,     # 75,497,472
        9 * 16 * 16 * 256 * 256,     # 150,994,944
        9 * 16 * 16 * 256 * 256,     # 150,994,944
        9 * 16 * 16 * 256 * 1024,    # 603,979,776
        1 * 16 * 16 * 1024 * 21,     # 5,505,024
    ]
    assert sum(flops) == 1_371_537_408


def test_dl_vgg9_energy_at_uniform_rate_by_hand():
    layers = dl_vgg9_64x64()
    estimate = estimate_energy(layers, {layer.name: 0.1 for layer in layers}, 20)
    # ANN: 1,371,537,408 MAC * 4.6 pJ = 6,309,072,076.8 pJ
    assert estimate.ann_joules == pytest.approx(6.3090720768e-3, rel=1e-12)
    # SNN: 1,371,537,408 * 0.1 spikes * 0.9 pJ * 20 steps = 2,468,767,334.4 pJ
    assert estimate.snn_joules == pytest.approx(2.4687673344e-3, rel=1e-12)
    assert estimate.ratio == pytest.approx(4.6 / (0.1 * 0.9 * 20))  # 2.56x
    assert estimate.flops == 1_371_537_408
    conv8 = estimate.layers[7]
    assert (conv8.name, conv8.spike_rate) == ("conv8", 0.1)
    assert conv8.snn_joules == pytest.approx(603_979_776 * 0.1 * 0.9e-12 * 20)


def test_first_layer_on_analog_input_costs_macs_every_step():
    layers = dl_vgg9_64x64()
    rates = {layer.name: 0.1 for layer in layers[1:]}  # no rate needed for conv1
    estimate = estimate_energy(layers, rates, 20, first_layer="mac")
    # conv1: 7,077,888 * 4.6 pJ * 20 = 651,165,696 pJ; the rest: 1,364,459,520 * 0.1 * 0.9 pJ * 20
    assert estimate.layers[0].spike_rate is None
    assert estimate.layers[0].snn_joules == pytest.approx(6.51165696e-4, rel=1e-12)
    assert estimate.snn_joules == pytest.approx(6.51165696e-4 + 2.456027136e-3, rel=1e-12)


def test_per_layer_rates_and_custom_costs():
    layers = [LayerCost("a", (3, 3), 2, 4, 5, 5), LayerCost("b", (1, 1), 4, 3, 5, 5)]
    # a: 9*25*2*4 = 1800 MAC, b: 25*4*3 = 300 MAC
    estimate = estimate_energy(layers, {"a": 0.5, "b": 0.25}, 4, e_mac_pj=2.0, e_ac_pj=1.0)
    assert estimate.ann_joules == pytest.approx((1800 + 300) * 2.0e-12)
    assert estimate.snn_joules == pytest.approx((1800 * 0.5 + 300 * 0.25) * 1.0e-12 * 4)


def test_grouped_convolution_divides_by_groups():
    depthwise = LayerCost("dw", (3, 3), 32, 32, 8, 8, groups=32)
    assert depthwise.flops == 9 * 8 * 8 * 1 * 32
    assert LayerCost("g2", (3, 3), 32, 64, 8, 8, groups=2).flops == 9 * 8 * 8 * 16 * 64


def test_zero_spikes_cost_nothing():
    estimate = estimate_energy([LayerCost("a", (3, 3), 1, 1, 2, 2)], {"a": 0.0}, 10)
    assert estimate.snn_joules == 0.0 and estimate.ratio == float("inf")


def test_spike_rate_counts_signed_spikes():
    spikes = np.array([[[0, 1], [-1, 0]], [[0, 0], [1, 1]]], dtype=np.float32)  # [T=2, 2, 2]
    assert spike_rate(spikes) == 0.5


@pytest.mark.parametrize("call, message", [
    (lambda: estimate_energy(dl_vgg9_64x64(), {"conv1": 0.1}, 20), "no input spike rate"),
    (lambda: estimate_energy([LayerCost("a", (1, 1), 1, 1, 1, 1)], {"a": 1.5}, 20), r"\[0, 1\]"),
    (lambda: estimate_energy([LayerCost("a", (1, 1), 1, 1, 1, 1)], {"a": 0.1}, 0), "timesteps"),
    (lambda: estimate_energy([], {}, 20), "no layers"),
    (lambda: estimate_energy([LayerCost("a", (1, 1), 1, 1, 1, 1)], {"a": 0.1}, 2, first_layer="x"), "first_layer"),
    (lambda: LayerCost("bad", (3, 3), 30, 64, 8, 8, groups=4), "groups=4 must divide"),
    (lambda: LayerCost("bad", (3, 0), 3, 64, 8, 8), "positive integers"),
])
def test_mistakes_are_user_errors(call, message):
    with pytest.raises(UserError, match=message):
        call()
