"""The eager PyTorch driver of a network body.

Each model writes its body once against a small set of operations (``conv``,
``norm``, ``neuron``, ``pool``, ``resize``, ...). This class executes them
with PyTorch; :class:`edge_snn.export.graph.OnnxOps` emits the same calls as
ONNX nodes. Tensors in a body have time folded into the batch dimension:
``[S * B, C, H, W]`` holds ``S`` consecutive timesteps, step-major. Time-major
execution calls the body with ``S = 1`` per step, layer-major once with
``S = T``; only :meth:`neuron` iterates over the S steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edge_snn.models.bntt import BNTT
from edge_snn.neuron import LIFParams, firing_margin, lif_step


class TorchOps:
    """Runs a body eagerly; records per-layer spike counts (and spikes, if asked)."""

    def __init__(self, *, record_spikes: bool = False):
        self.record_spikes = record_spikes
        self.spike_counts: dict[str, torch.Tensor] = {}
        self.spikes: dict[str, list[torch.Tensor]] = {}
        self.margins: dict[str, list[torch.Tensor]] = {}  # U - theta before reset, per step (with record_spikes)

    def select_step(self, x_seq: torch.Tensor, t: int) -> torch.Tensor:
        return x_seq[t]

    def fold_time(self, x_seq: torch.Tensor) -> torch.Tensor:
        return x_seq.reshape(-1, *x_seq.shape[2:])

    def conv(self, x: torch.Tensor, module: nn.Module) -> torch.Tensor:
        return module(x)

    def norm(self, x: torch.Tensor, bn: BNTT, step: int, steps: int) -> torch.Tensor:
        if steps == 1:
            return bn(x, step)
        return torch.cat([bn(chunk, step + s) for s, chunk in enumerate(x.chunk(steps))])

    def neuron(self, name: str, current: torch.Tensor, membrane: torch.Tensor, steps: int, params: LIFParams):
        out = []
        for chunk in current.chunk(steps) if steps > 1 else (current,):
            spikes, membrane = lif_step(chunk, membrane, params)
            out.append(spikes)
            if self.record_spikes:
                self.spikes.setdefault(name, []).append(spikes.detach())
                self.margins.setdefault(name, []).append(firing_margin(spikes, membrane, params).detach())
        spikes = out[0] if steps == 1 else torch.cat(out)
        count = spikes.detach().sum()
        self.spike_counts[name] = self.spike_counts.get(name, 0) + count
        return spikes, membrane

    def relu(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1)  # count_include_pad=True, as the paper's code

    def resize(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if tuple(x.shape[-2:]) == tuple(size):
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=True)

    def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b

    def sum_steps(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        if steps == 1:
            return x
        return x.reshape(steps, -1, *x.shape[1:]).sum(0)

    def mean_over_steps(self, acc: torch.Tensor, steps_done) -> torch.Tensor:
        return acc / steps_done
