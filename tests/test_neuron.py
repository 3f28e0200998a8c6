"""The LIF neuron and surrogate gradients against hand-computed values (PAPER.md "Neuron")."""

import pytest
import torch

from edge_snn.neuron import LIFParams, lif_step
from edge_snn.surrogate import SURROGATE_GRADIENTS, fire


def run_sequence(currents, params):
    membrane = torch.zeros(1)
    spikes, potentials = [], []
    for c in currents:
        s, membrane = lif_step(torch.tensor([c]), membrane, params)
        spikes.append(int(s.item()))
        potentials.append(round(membrane.item(), 6))
    return spikes, potentials


def test_hand_computed_sequence():
    # leak 0.5, theta 1: U = 0.6 | 0.3+0.8=1.1 -> fire, 0.1 | 0.05 | 0.025+1.0=1.025 -> fire, 0.025
    spikes, potentials = run_sequence([0.6, 0.8, 0.0, 1.0], LIFParams(leak=0.5, threshold=1.0))
    assert spikes == [0, 1, 0, 1]
    assert potentials == pytest.approx([0.6, 0.1, 0.05, 0.025], abs=1e-6)


def test_membrane_exactly_at_threshold_does_not_spike():
    spikes, potentials = run_sequence([1.0, 0.0], LIFParams(leak=1.0, threshold=1.0))
    assert spikes == [0, 0]
    assert potentials == [1.0, 1.0]


def test_soft_reset_subtracts_theta_and_keeps_the_excess():
    spikes, potentials = run_sequence([2.5, 0.0, 0.0], LIFParams(leak=1.0, threshold=1.0))
    # 2.5 -> fire, 1.5 left; 1.5 -> fire, 0.5 left; 0.5 stays
    assert spikes == [1, 1, 0]
    assert potentials == pytest.approx([1.5, 0.5, 0.5])


def test_threshold_other_than_one():
    spikes, potentials = run_sequence([0.3, 0.3, 0.3], LIFParams(leak=1.0, threshold=0.5))
    assert spikes == [0, 1, 0]
    assert potentials == pytest.approx([0.3, 0.1, 0.4])


def test_paper_leak_default():
    spikes, potentials = run_sequence([0.5, 0.5, 0.5], LIFParams())
    # 0.5 | 0.495+0.5=0.995 | 0.98505+0.5=1.48505 -> fire, 0.48505
    assert spikes == [0, 0, 1]
    assert potentials[-1] == pytest.approx(0.48505, abs=1e-6)


EXPECTED = {
    "linear": lambda u, th: (0.3 / th) * max(0.0, 1.0 - abs(u / th - 1.0)),
    "fast-sigmoid": lambda u, th: 1.0 / (100.0 * abs(u - th) + 1.0) ** 2,
    "exponential": lambda u, th: 1.0 * torch.exp(torch.tensor(-10.0 * abs(u - th))).item(),
    "straight-through": lambda u, th: 1.0,
}


@pytest.mark.parametrize("name", sorted(SURROGATE_GRADIENTS))
@pytest.mark.parametrize("threshold", [1.0, 0.5])
def test_surrogate_gradient_matches_formula(name, threshold):
    values = [-0.5, 0.0, 0.3, 0.49, 0.5, 0.9, 1.0, 1.2, 1.7, 2.5]
    u = torch.tensor(values, requires_grad=True)
    spikes = fire(u, threshold, name)
    spikes.sum().backward()
    expected = torch.tensor([EXPECTED[name](v, threshold) for v in values])
    assert torch.allclose(u.grad, expected, atol=1e-6), (name, u.grad, expected)
    assert torch.equal(spikes.detach(), (u.detach() > threshold).float())


def test_no_gradient_through_the_reset():
    current = torch.tensor([1.5], requires_grad=True)
    _, membrane = lif_step(current, torch.zeros(1), LIFParams(leak=0.99, threshold=1.0))
    membrane.sum().backward()
    # U_after = U - theta * spike; with the reset detached dU_after/dI = 1 exactly
    assert current.grad.item() == pytest.approx(1.0)


def test_gradient_reaches_current_through_spikes():
    current = torch.tensor([0.9], requires_grad=True)
    spikes, _ = lif_step(current, torch.zeros(1), LIFParams(leak=0.99, threshold=1.0))
    spikes.sum().backward()
    assert current.grad.item() == pytest.approx(0.3 * (1 - abs(0.9 - 1.0)))
