"""A checkpoint in the authors' SNN-Segmentation format, made from a test oracle of their forward.

The oracle is written from the equations of the authors' ``SNN_VGG("dl-vgg9")``
forward, keeping their module layout (``features``, ``bn_features[K][t]``,
``classifier``, ``bn_classifier``) so its ``state_dict`` has their key names.
A plain module (not conftest) so test files can import it by a unique name.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

T, SIZE = 3, 32


class AuthorsDeepLabOracle(nn.Module):
    """Their Spiking-DeepLab restated: 7 spiking convs in ``features``, avg-pool on spikes
    after features 1 and 3, spiking atrous conv ``classifier[0]``, readout ``classifier[1]``.

    Per layer and step: ``U = leak * U + BN_t(conv(x))``; fire where ``U / theta - 1 > 0``;
    ``U -= theta`` where fired. Readout: ``acc += conv(x)`` (no leak, no BN);
    logits = bilinear(acc / T, input size, align_corners=True).
    """

    POOL_AFTER = (1, 3)

    def __init__(self, in_channels: int, num_classes: int, timesteps: int, leak: float, threshold: float):
        super().__init__()
        layout = [(in_channels, 64, 1), (64, 64, 1), (64, 128, 1), (128, 128, 1), (128, 256, 1), (256, 256, 2), (256, 256, 2)]
        self.features = nn.ModuleList(nn.Conv2d(i, o, 3, padding=d, dilation=d, bias=False) for i, o, d in layout)
        self.bn_features = nn.ModuleList(self._bn_per_step(o, timesteps) for _, o, _ in layout)
        self.classifier = nn.ModuleList([
            nn.Conv2d(256, 1024, 3, padding=12, dilation=12, bias=False),
            nn.Conv2d(1024, num_classes, 1, bias=False),
        ])
        self.bn_classifier = nn.ModuleList([self._bn_per_step(1024, timesteps)])
        self.leak, self.threshold = torch.tensor(leak), torch.tensor(threshold)

    @staticmethod
    def _bn_per_step(channels: int, timesteps: int) -> nn.ModuleList:
        bns = nn.ModuleList(nn.BatchNorm2d(channels, eps=1e-4, momentum=0.1) for _ in range(timesteps))
        for bn in bns:
            bn.bias = None  # scale only, as they do after building
        return bns

    @torch.no_grad()
    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
        steps, _, _, height, width = spikes.shape
        spiking = list(zip(self.features, self.bn_features)) + [(self.classifier[0], self.bn_classifier[0])]
        mems: list = [None] * len(spiking)
        counts = [0.0] * len(spiking)
        acc = 0
        for t in range(steps):
            x = spikes[t]
            for k, (conv, bns) in enumerate(spiking):
                current = bns[t](conv(x))
                mem = self.leak * (torch.zeros_like(current) if mems[k] is None else mems[k]) + current
                over = mem / self.threshold - 1.0
                out = (over > 0).float()
                mems[k] = mem - (over > 0) * self.threshold
                counts[k] += out.sum().item()
                x = F.avg_pool2d(out, 3, 2, 1) if k in self.POOL_AFTER else out
            acc = acc + self.classifier[1](x)
        logits = F.interpolate(acc / steps, size=(height, width), mode="bilinear", align_corners=True)
        return logits, counts


def _randomize(oracle: nn.Module, seed: int) -> None:
    """Random convs (their xavier init) and non-trivial BN scales and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in oracle.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight, gain=2.0, generator=g)
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.running_mean.copy_(0.3 * torch.randn(c, generator=g))
                m.running_var.copy_(0.5 + 2.0 * torch.rand(c, generator=g))
                m.num_batches_tracked.fill_(1234)
    oracle.eval()


def authors_checkpoint(dataset: str, in_channels: int, num_classes: int, leak: float, threshold: float, seed: int,
                       *, thl: bool = False):
    oracle = AuthorsDeepLabOracle(in_channels, num_classes, T, leak, threshold)
    _randomize(oracle, seed)
    labels = {i: f"class{i}" for i in range(num_classes)}
    config = {  # the keys their setup.py puts in the wandb config saved by train.py/test.py
        "seed": 0, "gpu": True, "model_path": None, "conversion": None, "model_type": "snn",
        "architecture": "dl-vgg9", "kernel_size": 3, "pretrained": True, "bn": True, "full_prop": False,
        "dataset": {"name": dataset, "labels": labels, "num_cls": num_classes, "input_dim": in_channels,
                    "path": f"./data/{dataset}", "img_size": (200, 346)},
        "batch_size": 16, "img_size": (SIZE, SIZE), "thl": thl, "timesteps": T, "leak_mem": leak,
        "def_threshold": threshold, "threshold_type": None, "leaky": None, "alpha": None, "ibt": None,
        "identifier": "220101-run-snn-dl-vgg9-" + dataset,
    }
    ckpt = {"config": config, "max_miou": 0.337, "epoch": 50, "state_dict": oracle.state_dict()}
    return oracle, ckpt
