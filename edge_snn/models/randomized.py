"""Untrained models that spike: batch-norm statistics drawn so that every layer fires sometimes.

A freshly initialized network barely fires (its BN statistics are the identity), so a graph
exported from it exercises almost nothing. For fixtures and static checks (the selftest model,
test checkpoints, ``edge-snn check`` on a demo-shaped graph) the BNTT statistics and scales are
drawn instead: mean in [-0.2, 0.2), variance in [0.5, 1.5), scale in [0.5, 3.0), from ``seed``.
"""

from __future__ import annotations

import torch


def randomized(model, seed: int = 0):
    """``model`` (in place, returned in eval mode) with drawn BN statistics and scales."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 2.5 + 0.5)
    return model.eval()
