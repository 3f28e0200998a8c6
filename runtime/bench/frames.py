"""Encoded frames to benchmark with: seeded synthetic input, or the caller's own, checked against the graph."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edge_snn.errors import UserError
from edge_snn.runtime import contract as C


def synthetic_frames(session, count: int, *, seed: int = 0) -> list[np.ndarray]:
    """``count`` encoded frames ``[T_frame, B, C, H, W]`` of seeded random input.

    Images: uniform in the model's input range, clipped to [-1, 1] (so the
    Poisson input spike rate is about 0.5). Events: binary event frames with
    10% of the elements set.
    """
    c = session.contract
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        if c.encoding == "events":
            x = (rng.random((c.timesteps_trained, c.batch, c.channels, c.height, c.width)) < 0.1).astype(np.float32)
        else:
            lo, hi = max(c.input_range[0], -1.0), min(c.input_range[1], 1.0)
            x = rng.uniform(lo, hi, (c.batch, c.channels, c.height, c.width)).astype(np.float32)
        frames.append(session.encode(x, frame_index=i))
    return frames


def check_spikes(spikes: Sequence[np.ndarray], contract: C.ModelContract) -> list[np.ndarray]:
    out = []
    for s in spikes:
        s = np.ascontiguousarray(s, dtype=np.float32)
        if s.ndim != 5 or s.shape[1:] != tuple(contract.input_shape[1:]) or s.shape[0] % contract.timesteps:
            raise UserError(f"encoded frame of shape {s.shape} does not fit the graph input {contract.input_shape}: "
                            f"pass [N, {', '.join(map(str, contract.input_shape[1:]))}] with N a multiple of "
                            f"{contract.timesteps}")
        out.append(s)
    if len({s.shape[0] for s in out}) != 1:
        raise UserError("all encoded frames must have the same number of steps")
    return out
