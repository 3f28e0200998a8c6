"""The leaky integrate-and-fire neuron with soft reset (PAPER.md, "Neuron").

For one layer and one timestep, with input current ``I[t]`` (already through
the convolution and the per-timestep batch norm)::

    U[t] = leak * U[t-1] + I[t]        integrate   (leak = 0.99)
    o[t] = 1 if U[t] > theta else 0     fire        (theta = 1.0, strict >)
    U[t] = U[t] - theta * o[t]          soft reset  (no gradient through it)

:func:`lif_step` is the single definition of this step. The PyTorch models,
both exported ONNX layouts (through :mod:`edge_snn.export`) and the parity tool
are all drivers of it: nothing else in edge-snn restates the equations.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from edge_snn.surrogate import fire


@dataclass(frozen=True)
class LIFParams:
    """Neuron constants shared by every spiking layer of a network.

    leak: membrane decay per timestep (dimensionless, 0.99 in the paper).
    threshold: firing threshold theta, in the units of the input current.
    surrogate: name of the surrogate gradient used when training (see
        :mod:`edge_snn.surrogate`); irrelevant for inference.
    """

    leak: float = 0.99
    threshold: float = 1.0
    surrogate: str = "linear"


def lif_step(current: torch.Tensor, membrane: torch.Tensor, params: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Advance one LIF layer by one timestep: ``(I[t], U[t-1]) -> (o[t], U[t])``."""
    membrane = params.leak * membrane + current  # integrate
    spikes = fire(membrane, params.threshold, params.surrogate)  # fire
    membrane = membrane - params.threshold * spikes.detach()  # soft reset, no gradient
    return spikes, membrane


def firing_margin(spikes: torch.Tensor, membrane: torch.Tensor, params: LIFParams) -> torch.Tensor:
    """``U[t] - theta`` before the reset, from what :func:`lif_step` returned (undoes the soft reset).

    Parity uses it to tell a spike flip caused by rounding (the membrane was
    within rounding distance of theta) from one caused by wrong arithmetic.
    """
    return membrane + params.threshold * spikes - params.threshold
