"""Batch norm through time (BNTT): one BatchNorm per layer *per timestep*.

Kim & Panda's BNTT gives every timestep its own normalization statistics and
scale, ``I[t] = gamma_t * (z[t] - mu_t) / sqrt(var_t + eps)`` with no shift
(bias), eps = 1e-4, momentum 0.1 (PAPER.md). A model trained with T steps
therefore holds T sets, and what to do at a step ``t >= T`` is a policy:

``error``  refuse (the default: the network never saw such a step),
``last``   reuse the last set, ``gamma_{T-1}``,
``cycle``  reuse set ``t mod T``.
"""

from __future__ import annotations

import torch
from torch import nn

from edge_snn.errors import UserError

BEYOND_POLICIES = ("error", "last", "cycle")


def bn_index(step: int, timesteps: int, beyond: str) -> int:
    """Which BN set serves absolute timestep ``step`` under the ``beyond`` policy."""
    if step < timesteps:
        return step
    if beyond == "last":
        return timesteps - 1
    if beyond == "cycle":
        return step % timesteps
    raise UserError(
        f"timestep {step} is beyond the {timesteps} steps this model was trained with (BNTT holds one "
        f"batch norm per step); run at most {timesteps} steps per frame, or choose how later steps are "
        f"normalized with --bn-beyond last|cycle"
    )


class BNTT(nn.Module):
    """``timesteps`` scale-only BatchNorm2d layers; ``forward(x, step)`` picks one."""

    def __init__(self, channels: int, timesteps: int, *, eps: float = 1e-4, momentum: float = 0.1, bias: bool = False):
        super().__init__()
        self.timesteps = timesteps
        self.beyond = "error"
        self.steps = nn.ModuleList(nn.BatchNorm2d(channels, eps=eps, momentum=momentum) for _ in range(timesteps))
        if not bias:
            for bn in self.steps:
                bn.register_parameter("bias", None)

    def forward(self, x: torch.Tensor, step: int) -> torch.Tensor:
        return self.steps[bn_index(step, self.timesteps, self.beyond)](x)

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference-time ``(scale, shift)``, each ``[T, C]``, such that ``bn_t(x) = x * scale[t] + shift[t]``.

        Computed in float32 in the order PyTorch's CPU kernel uses
        (``alpha = gamma * (1 / sqrt(var + eps))``, ``beta = b - mean * alpha``),
        so the exported graph matches the reference to the last bit where it can.
        """
        scales, shifts = [], []
        for bn in self.steps:
            inv_std = 1.0 / torch.sqrt(bn.running_var + bn.eps)
            alpha = inv_std * bn.weight if bn.weight is not None else inv_std
            bias = bn.bias if bn.bias is not None else torch.zeros_like(alpha)
            scales.append(alpha)
            shifts.append(bias - bn.running_mean * alpha)
        return torch.stack(scales).detach(), torch.stack(shifts).detach()
