"""Surrogate gradients for the spike nonlinearity.

The forward pass is always the exact Heaviside step ``o = 1[U > theta]`` (strict
``>``: a membrane exactly at threshold does not fire). Only the backward pass
differs: the true derivative is a Dirac delta, so training through time uses a
smooth stand-in ``dL/dU = dL/do * g(U)``. Constants are the reference code's.

=================  ===========================================================
name               g(U)
=================  ===========================================================
``linear``         (0.3 / theta) * max(0, 1 - |U/theta - 1|)     (paper default)
``fast-sigmoid``   1 / (scale * |U - theta| + 1)^2,  scale = 100
``exponential``    alpha * exp(-beta * |U - theta|), alpha = 1, beta = 10
``straight-through``  1
=================  ===========================================================

No gradient flows into ``theta``; it is a constant of the neuron.
"""

from __future__ import annotations

from typing import Callable

import torch

from edge_snn.errors import UserError


def _linear(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    return (0.3 / threshold) * torch.clamp(1.0 - torch.abs(membrane / threshold - 1.0), min=0.0)


def _fast_sigmoid(membrane: torch.Tensor, threshold: float, scale: float = 100.0) -> torch.Tensor:
    return 1.0 / (scale * torch.abs(membrane - threshold) + 1.0) ** 2


def _exponential(membrane: torch.Tensor, threshold: float, alpha: float = 1.0, beta: float = 10.0) -> torch.Tensor:
    return alpha * torch.exp(-beta * torch.abs(membrane - threshold))


def _straight_through(membrane: torch.Tensor, threshold: float) -> torch.Tensor:
    return torch.ones_like(membrane)


SURROGATE_GRADIENTS: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "linear": _linear,
    "fast-sigmoid": _fast_sigmoid,
    "exponential": _exponential,
    "straight-through": _straight_through,
}


def surrogate_gradient(name: str) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """The function ``g(U, theta)`` registered under ``name``."""
    try:
        return SURROGATE_GRADIENTS[name]
    except KeyError:
        raise UserError(
            f"unknown surrogate {name!r}; choose one of {', '.join(SURROGATE_GRADIENTS)}"
        ) from None


class _SpikeFunction(torch.autograd.Function):
    """Heaviside forward, surrogate backward. One class, the gradient is a parameter."""

    @staticmethod
    def forward(ctx, membrane: torch.Tensor, threshold: float, name: str) -> torch.Tensor:
        ctx.save_for_backward(membrane)
        ctx.threshold = threshold
        ctx.name = name
        return (membrane > threshold).to(membrane.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        (membrane,) = ctx.saved_tensors
        grad = SURROGATE_GRADIENTS[ctx.name](membrane, ctx.threshold)
        return grad_spikes * grad, None, None


def fire(membrane: torch.Tensor, threshold: float, surrogate: str = "linear") -> torch.Tensor:
    """Spikes ``1[U > theta]`` as the membrane's dtype, differentiable through ``surrogate``.

    Without autograd (inference) this is the plain comparison. A symbolic
    tensor (the ONNX emitter's, see :mod:`edge_snn.export.graph`) brings its own
    ``fire`` so that :func:`edge_snn.neuron.lif_step` drives the export too.
    """
    if not isinstance(membrane, torch.Tensor):
        return membrane.fire(threshold)
    if torch.is_grad_enabled() and membrane.requires_grad:
        return _SpikeFunction.apply(membrane, threshold, surrogate)
    return (membrane > threshold).to(membrane.dtype)
