"""Turn a batch from a dataset into the spike sequence a spiking model reads.

The numbers come from :mod:`edge_snn.runtime.encoding` (numpy), the same code
the device runs, so the reference and the runtime see bit-identical spikes.
"""

from __future__ import annotations

import numpy as np
import torch

from edge_snn.errors import UserError
from edge_snn.runtime.encoding import ENCODINGS, direct_encode, poisson_encode


def encode_batch(x: torch.Tensor, encoding: str, timesteps: int, *, seed: int = 0, start_step: int = 0) -> torch.Tensor:
    """Batch -> ``[T, B, C, H, W]`` float32.

    poisson / direct: ``x`` is ``[B, C, H, W]`` in [-1, 1]; events: ``x`` is
    ``[B, T, P, H, W]`` event frames (as datasets give them), returned time-first.
    """
    if encoding == "events":
        if x.dim() != 5:
            raise UserError(f"event input must be [B, T, P, H, W], got {tuple(x.shape)}")
        if x.shape[1] < start_step + timesteps:
            raise UserError(f"event input holds {x.shape[1]} frames, {start_step + timesteps} needed")
        return x[:, start_step:start_step + timesteps].transpose(0, 1).contiguous().float()
    if x.dim() != 4:
        raise UserError(f"{encoding} input must be [B, C, H, W], got {tuple(x.shape)}")
    array = x.detach().cpu().numpy().astype(np.float32)
    if encoding == "poisson":
        spikes = poisson_encode(array, timesteps, seed=seed, start_step=start_step)
    elif encoding == "direct":
        spikes = direct_encode(array, timesteps)
    else:
        raise UserError(f"unknown encoding {encoding!r}; choose one of {', '.join(ENCODINGS)}")
    return torch.from_numpy(spikes).to(x.device)
