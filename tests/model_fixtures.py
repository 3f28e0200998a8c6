"""Small spiking models for tests: BN statistics that make every layer fire, saved as real checkpoints.

A plain module (not conftest) so test files can import it by a unique name.
"""

from __future__ import annotations

import torch

from edge_snn.models import build_model
from edge_snn.training.checkpoint import save_checkpoint
from edge_snn.training.config import TrainConfig


def randomized(model, seed: int = 0):
    """BN statistics and scales that make every layer fire sometimes (fresh init barely fires)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) * 2.5 + 0.5)
    return model.eval()


def write_small_checkpoint(path, *, arch="dl-vgg9", timesteps=6, height=24, width=32, dataset="synthetic-events",
                           seed=0):
    torch.manual_seed(seed)
    in_channels = 2 if dataset == "synthetic-events" else 3
    model = randomized(build_model(arch, in_channels=in_channels, num_classes=4, timesteps=timesteps, width=0.125), seed)
    config = TrainConfig(arch=arch, width_mult=0.125, timesteps=timesteps, dataset=dataset, height=height, width=width,
                         train_samples=8, val_samples=8, epochs=1, batch_size=4)
    encoding = "events" if dataset == "synthetic-events" else "poisson"
    save_checkpoint(path, model, data={"dataset": dataset, "encoding": encoding, "height": height, "width": width,
                                       "class_names": ["background", "vehicle", "person", "building"]},
                    train_config=config.to_dict(), epoch=1, step_in_epoch=0)
    return model
